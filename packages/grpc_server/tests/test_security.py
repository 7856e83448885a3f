"""Hostile requests against a real TLS + mTLS + token server on 127.0.0.1."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest
from grpc_testutil import TIMEOUT, FakeAgent, pb, rpc_error

API_KEY = "sk-live-do-not-leak-0123456789abcdef"


@pytest.mark.parametrize("lo, hi", [(-1.7e308, 1.7e308), (0.0, 5e-324)], ids=["overflow", "underflow"])
def test_histogram_range_that_cannot_be_binned_is_invalid(stub: Any, lo: float, hi: float) -> None:
    err = rpc_error(stub.GetHistogram, pb.GetHistogramRequest(column="loss", bins=4096, min=lo, max=hi))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "min/max" in (err.details() or "")
    assert stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT).samples  # still serving


class LeakyAgent(FakeAgent):
    """A provider SDK that echoes the key it was given in its error messages."""

    def __init__(self, exc_type: type[Exception]) -> None:
        super().__init__()
        self.exc_type = exc_type

    def init(self, provider: str | None = None, api_key: str | None = None, model: str | None = None) -> dict:
        raise self.exc_type(f"provider rejected api key {api_key!r} for {provider}")


@pytest.mark.parametrize("exc_type, code", [(ValueError, grpc.StatusCode.INVALID_ARGUMENT),
                                            (RuntimeError, grpc.StatusCode.INTERNAL)])
def test_agent_init_errors_never_carry_the_api_key(make_env: Any, grpc_log: pytest.LogCaptureFixture,
                                                   exc_type: type[Exception], code: grpc.StatusCode) -> None:
    env = make_env()
    env.plugin.agent = LeakyAgent(exc_type)
    err = rpc_error(env.stub().AgentInit, pb.AgentInitRequest(provider="openrouter", api_key=API_KEY, model="m"))
    assert err.code() == code
    assert API_KEY not in (err.details() or "")
    logged = "\n".join(r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
                       for r in grpc_log.records)
    assert API_KEY not in logged
    audit = (env.tmp_path / "root" / "audit.jsonl").read_text(encoding="utf-8")
    assert '"agent_init"' in audit and API_KEY not in audit


def test_repeated_columns_are_invalid(stub: Any) -> None:
    """1000 copies of one column x 10000 rows would build 10M cells from a 10 kB request."""
    err = rpc_error(stub.QuerySamples, pb.QuerySamplesRequest(columns=["loss", "label", "loss"],
                                                              page=pb.Page(limit=10)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "columns[2]" in (err.details() or "")


def test_huge_string_hyperparameter_is_invalid(make_env: Any) -> None:
    env = make_env()
    err = rpc_error(env.stub().SetHyperParameter,
                    pb.SetHyperParameterRequest(key="name", value=pb.Value(string="x" * 2_000_000)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "value.string" in (err.details() or "")
    assert env.experiment.hyperparameters()["applied"]["name"] == "run"
