"""What every handler module shares: the experiment, the caller, query/value translation."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import grpc
from weightslab.audit import get_audit_log
from weightslab.operations import Caller
from weightslab.security import TokenSet

from weightslab_grpc_server._generated import experiment_pb2 as pb
from weightslab_grpc_server.convert import parse_json
from weightslab_grpc_server.errors import classify, invalid

log = logging.getLogger("weightslab.grpc")

_STATES = {"running": pb.TRAINING_STATE_RUNNING, "paused": pb.TRAINING_STATE_PAUSED,
           "evaluating": pb.TRAINING_STATE_EVALUATING}


def state_of(value: str) -> Any:
    return _STATES.get(value, pb.TRAINING_STATE_UNSPECIFIED)


def caller_of(context: grpc.ServicerContext, tokens: TokenSet | None = None) -> dict[str, Any]:
    """Who is calling (audit): peer, client certificate subject, fingerprint of the accepted token."""
    from weightslab.security import caller_identity

    try:
        identity = dict(caller_identity(context, tokens))
    except Exception:  # identity is best effort; never fail the call over it
        log.debug("caller identity unavailable", exc_info=True)
        try:
            identity = {"peer": str(context.peer())}
        except Exception:
            identity = {}
    return {"transport": "grpc", **identity}


def query_of(message: Any, field: str) -> Any:
    """A core :class:`~weightslab.query.Query` from a ``SampleQuery`` message (unset = every row)."""
    from weightslab.operations.samples import parse_query

    kind = message.WhichOneof("kind") if message is not None else None
    if kind is None:
        return parse_query(None)
    if kind == "text":
        return parse_query(message.text, f"{field}.text")
    data = parse_json(message.spec_json, f"{field}.spec_json")
    if not isinstance(data, dict):
        raise invalid(f"{field}.spec_json: expected a JSON object (the query spec)")
    return parse_query(data, f"{field}.spec_json")


class HandlerBase:
    """State the handler mixins use; :class:`~weightslab_grpc_server.servicer.ExperimentServicer` sets it."""

    experiment: Any
    pm: Any
    # the server's accepted tokens (``weightslab_server_security``), so that audit fingerprints
    # the token that was accepted; ``None``: unknown (a servicer used without a server handle)
    accepted_tokens: TokenSet | None = None

    def caller(self, context: grpc.ServicerContext) -> Caller:
        identity = caller_of(context, self.accepted_tokens)
        identity.pop("transport", None)
        return Caller("grpc", identity)

    @contextmanager
    def rejecting(self, context: grpc.ServicerContext, action: str,
                  params: Mapping[str, Any] | None = None) -> Iterator[None]:
        """Translation of a mutating request: a request refused before the core operation ran is
        audited too (the operation audits everything after)."""
        try:
            yield
        except Exception as exc:
            code, message = classify(exc)
            get_audit_log(self.experiment).record(action, params=dict(params or {}), outcome="error",
                                                  error=message, caller=self.caller(context).audit())
            raise
