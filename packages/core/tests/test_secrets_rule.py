"""The one secret-name rule (weightslab.secrets) and how secret values are shown."""

from __future__ import annotations

import pytest
from weightslab.secrets import fingerprint, is_secret_name, masked, redact, scrub

SECRET = ["openrouter_api_key", "hf_access_key", "db_passwd", "password", "signingKey", "auth_token",
          "GRPC_AUTH_TOKENS", "apiKey", "AWS_SECRET_ACCESS_KEY", "llm.openrouterApiKey", "credentials.user",
          "private_key_path", "client_secret", "service-credential", "hmac_key"]
PLAIN = ["key", "lr", "max_tokens", "num_tokens", "tokenizer", "token_fingerprint", "sort_keys", "keyframe",
         "instance_aggregation", "batch_size", "monkey", "", "optimizer.momentum"]


@pytest.mark.parametrize("name", SECRET)
def test_secret_names_are_recognised(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", PLAIN)
def test_ordinary_names_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)


def test_fingerprint_is_keyed_stable_and_never_the_value() -> None:
    import hashlib

    fp = fingerprint("sk-very-secret")
    assert fp == fingerprint("sk-very-secret") and len(fp) == 16 and fp != fingerprint("sk-very-secreT")
    assert fp not in hashlib.sha256(b"sk-very-secret").hexdigest()  # keyed: not a plain hash prefix
    assert masked(None) is None and masked("") == "" and masked("sk-x") == f"fingerprint {fingerprint('sk-x')}"


def test_redact_masks_nested_secret_entries_only() -> None:
    out = redact({"lr": 0.1, "llm": {"openrouter_api_key": "sk-abcdef", "model": "m"}, "credentials": {"u": "x"}})
    assert out["lr"] == 0.1 and out["llm"]["model"] == "m"
    assert out["llm"]["openrouter_api_key"].startswith("fingerprint ") and "sk-abcdef" not in str(out)
    assert isinstance(out["credentials"], str) and out["credentials"].startswith("fingerprint ")


def test_scrub_removes_secret_values_from_a_message() -> None:
    text = scrub("hf_access_key='hf_0123456789': expected an integer", {"a": {"hf_access_key": "hf_0123456789"}})
    assert "hf_0123456789" not in text and "fingerprint " in text
