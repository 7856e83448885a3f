"""The audit trail: json / csv / none after a scripted session; unit behaviour of AuditLog."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import grpc
import pytest
from grpc_testutil import TIMEOUT, Env, FakeEvaluation, pb, rpc_error
from weightslab.audit import CSV_FIELDS, AuditLog, get_audit_log


def _script(env: Env) -> None:
    """A session touching every kind of mutation, plus a rejected edit and an auth failure."""
    stub = env.stub()
    env.experiment.evaluation = FakeEvaluation()
    stub.Pause(pb.PauseRequest(), timeout=TIMEOUT)
    stub.Resume(pb.ResumeRequest(steps=2), timeout=TIMEOUT)
    stub.SetHyperParameter(pb.SetHyperParameterRequest(key="lr", value=pb.Value(number=0.5)), timeout=TIMEOUT)
    stub.EditSamples(pb.EditSamplesRequest(action=pb.EDIT_ACTION_TAG, tag="x", ids=pb.SampleIds(ids=["1", "2"])),
                     timeout=TIMEOUT)
    rpc_error(stub.EditSamples, pb.EditSamplesRequest(action=pb.EDIT_ACTION_DISCARD,
                                                      ids=pb.SampleIds(ids=["nope"])))
    stub.StartEvaluation(pb.StartEvaluationRequest(split="test"), timeout=TIMEOUT)
    stub.CancelEvaluation(pb.CancelEvaluationRequest(), timeout=TIMEOUT)
    stub.AgentInit(pb.AgentInitRequest(provider="openrouter", api_key="sk-very-secret-key", model="m"),
                   timeout=TIMEOUT)
    stub.AgentQuery(pb.AgentQueryRequest(question="find noisy", preview=True), timeout=TIMEOUT)
    stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)  # reads are not audited
    assert rpc_error(env.stub(token=None).Pause, pb.PauseRequest()).code() == grpc.StatusCode.UNAUTHENTICATED


EXPECTED_ACTIONS = ["pause", "resume", "set_hyperparameter", "edit_samples", "edit_samples", "start_evaluation",
                    "cancel_evaluation", "agent_init", "agent_query", "auth_failure"]


def test_audit_json(make_env) -> None:
    env = make_env(AUDIT_LOG_FORMAT="json")
    _script(env)
    root = env.experiment.root_log_dir
    assert not (root / "audit.csv").exists()
    lines = (root / "audit.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["action"] for r in records] == EXPECTED_ACTIONS
    pause, resume, hp, edit, bad_edit, start, cancel, init, query, denied = records
    assert pause["before"] == "running" and pause["after"] == "paused" and pause["outcome"] == "ok"
    assert resume["params"] == {"steps": 2} and resume["after"] == "running"
    assert hp["params"] == {"key": "lr", "value": 0.5} and hp["before"] == 0.1 and hp["after"] == 0.5
    assert edit["params"]["ids"] == ["1", "2"] and edit["result"] == {"matched": 2, "changed": 2}
    assert bad_edit["outcome"] == "error" and "unknown sample ids" in bad_edit["error"]
    assert start["before"] == "idle" and start["after"] == "running" and cancel["after"] == "cancelled"
    assert init["params"]["api_key"].startswith("fingerprint ") and "sk-very-secret-key" not in "\n".join(lines)
    assert query["params"] == {"question": "find noisy", "preview": True} and query["result"]["applied"] is False
    assert denied["outcome"] == "denied"
    for record in records[:-1]:
        caller = record["caller"]
        assert caller["transport"] == "grpc" and caller["peer"].startswith("ipv4:127.0.0.1:")
        assert caller["client_common_name"] == "envoy-client" and caller["token_fingerprint"]
        assert record["ts"].endswith("Z") and "T" in record["ts"]


def test_audit_csv(make_env) -> None:
    env = make_env(AUDIT_LOG_FORMAT="csv")
    _script(env)
    _script(env)  # appended, header only once
    # The second auth failure of the same host within the interval is counted, then written as
    # one summary record when the server stops (rate limit).
    env.handle.stop()
    root = env.experiment.root_log_dir
    assert not (root / "audit.jsonl").exists()
    text = (root / "audit.csv").read_text()
    assert text.count("ts,action,outcome") == 1
    rows = list(csv.DictReader(text.splitlines()))
    assert list(rows[0]) == list(CSV_FIELDS)
    assert [r["action"] for r in rows] == EXPECTED_ACTIONS * 2
    assert json.loads(rows[2]["params"]) == {"key": "lr", "value": 0.5}
    assert rows[2]["before"] == "0.1" and rows[2]["after"] == "0.5"
    assert json.loads(rows[0]["caller"])["client_common_name"] == "envoy-client"
    assert "sk-very-secret-key" not in text


def test_audit_none(make_env) -> None:
    env = make_env(AUDIT_LOG_FORMAT="none")
    _script(env)
    root = env.experiment.root_log_dir
    assert not (root / "audit.jsonl").exists() and not (root / "audit.csv").exists()
    assert get_audit_log(env.experiment).path is None


def test_audit_log_shared_and_thread_safe(tmp_path: Path) -> None:
    class Exp:
        root_log_dir = tmp_path
        services: dict = {}
        config = None

    exp = Exp()
    log = get_audit_log(exp)
    assert get_audit_log(exp) is log and exp.services["audit"] is log

    def write(n: int) -> None:
        for i in range(50):
            log.record("tag", params={"thread": n, "i": i, "blob": "x" * 500})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.record({"action": "cli_tag", "outcome": "ok", "caller": {"transport": "cli"}})  # the CLI's form
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert len(records) == 401 and records[-1]["action"] == "cli_tag" and records[-1]["ts"]
    assert sorted((r["params"]["thread"], r["params"]["i"]) for r in records[:-1]) == [
        (n, i) for n in range(8) for i in range(50)]


def test_audit_csv_formula_injection_and_append_only(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, "csv")
    log.record("tag", params={"tag": "x"}, error="=HYPERLINK(\"http://evil\")", outcome="error")
    before = (tmp_path / "audit.csv").read_bytes()
    log.record("untag", params={})
    after = (tmp_path / "audit.csv").read_bytes()
    assert after.startswith(before)
    row = list(csv.DictReader(after.decode().splitlines()))[0]
    assert row["error"].startswith("'=")


def test_audit_write_failure_is_logged_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = AuditLog(blocker / "sub", "json")  # a directory that cannot exist
    log.record("pause")
    assert log.failures == 1


def test_bad_format_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="AUDIT_LOG_FORMAT='xml'"):
        AuditLog(tmp_path, "xml")


def test_audit_fingerprints_the_accepted_token_not_a_wrong_one_sent_first(make_env) -> None:
    """A wrong token sent before the right one must not appear in the accepted call's record."""
    from weightslab.config import fingerprint

    env = make_env(AUDIT_LOG_FORMAT="json")
    wrong = "wrong-token-sent-first-0123456789"
    stub = env.stub(token=None)
    metadata = (("x-api-key", wrong), ("authorization", f"Bearer {env.token}"))
    stub.Pause(pb.PauseRequest(), metadata=metadata, timeout=TIMEOUT)
    records = [json.loads(line) for line in
               (env.experiment.root_log_dir / "audit.jsonl").read_text().splitlines()]
    pause = [r for r in records if r["action"] == "pause"]
    assert len(pause) == 1 and pause[0]["outcome"] == "ok"
    assert pause[0]["caller"]["token_fingerprint"] == fingerprint(env.token)
    assert fingerprint(wrong) not in json.dumps(records)
