"""Audit records never carry secret values, whatever field they arrive in."""

from __future__ import annotations

import json

from weightslab.audit import AuditLog, make_record


def test_secret_named_hyperparameter_values_are_fingerprinted(tmp_path):
    log = AuditLog(tmp_path, "json")
    log.record(make_record("set_hyperparameter", params={"key": "openrouter_api_key", "value": "sk-live-123"},
                           before="sk-old-456", after="sk-live-123"))
    log.record(make_record("set_hyperparameter", params={"key": "lr", "value": 0.1}, before=0.01, after=0.1))
    text = (tmp_path / "audit.jsonl").read_text()
    assert "sk-live-123" not in text and "sk-old-456" not in text
    secret, plain = (json.loads(line) for line in text.splitlines())
    assert secret["params"]["value"].startswith("fingerprint ") and secret["after"].startswith("fingerprint ")
    assert plain["params"] == {"key": "lr", "value": 0.1} and plain["after"] == 0.1
