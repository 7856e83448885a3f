"""Token parsing, constant-time matching and client helpers (no network)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from weightslab_auth.client import TokenClientInterceptor, client_channel_credentials, token_metadata
from weightslab_auth.tokens import TokenAuthInterceptor, TokenSet, configured_tokens, presented_tokens


def test_presented_tokens_from_every_header_form() -> None:
    metadata = [("authorization", "Bearer  a "), ("X-Api-Key", "b"), ("x-grpc-auth-token", " c"),
                ("authorization", "Basic zzz"), ("user-agent", "grpc"), ("x-api-key-bin", b"\x00"),
                ("x-api-key", "  ")]
    assert presented_tokens(metadata) == ["a", "b", "c"]
    assert presented_tokens(None) == []


def test_configured_tokens_is_the_union(make_config: Callable[..., Any]) -> None:
    config = make_config(GRPC_AUTH_TOKEN="one", GRPC_AUTH_TOKENS="two, one,,three")
    assert configured_tokens(config) == ("one", "two", "three")
    assert configured_tokens(make_config()) == ()


@given(st.lists(st.text(min_size=1), min_size=1, max_size=4), st.text())
def test_token_set_matches_exactly(tokens: list[str], candidate: str) -> None:
    token_set = TokenSet(tokens)
    assert all(token_set.matches(t) for t in tokens)
    assert token_set.matches(candidate) == (candidate in tokens)


def test_token_set_keeps_no_plaintext() -> None:
    token_set = TokenSet(["plain-secret"])
    assert "plain-secret" not in repr(vars(token_set))


def test_interceptor_needs_a_token() -> None:
    with pytest.raises(ValueError):
        TokenAuthInterceptor(["", ""])


def test_token_metadata_forms() -> None:
    assert token_metadata("t") == (("authorization", "Bearer t"),)
    assert token_metadata("t", "X-API-Key") == (("x-api-key", "t"),)
    assert token_metadata("t", "x-grpc-auth-token") == (("x-grpc-auth-token", "t"),)
    with pytest.raises(ValueError, match="unknown token header"):
        token_metadata("t", "cookie")
    assert "secret" not in repr(TokenClientInterceptor("secret"))


def test_client_credentials_need_cert_and_key_together(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="together"):
        client_channel_credentials(None, cert=b"x")


def test_token_set_is_the_core_one_and_accepts_lone_surrogates() -> None:
    import weightslab.security

    assert TokenSet is weightslab.security.TokenSet and presented_tokens is weightslab.security.presented_tokens
    token_set = TokenSet(["\ud800secret"])
    assert token_set.matches("\ud800secret") and not token_set.matches("\ud800")
    assert "secret" not in repr(token_set)
