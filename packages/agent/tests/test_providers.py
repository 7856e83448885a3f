"""Providers against local HTTP servers that speak the Ollama and OpenAI/OpenRouter wire formats:
the exact request bodies and headers, model listing, health probes and every error path."""

from __future__ import annotations

import socket

import pytest
from agent_testutil import KEY, LLMServer, Reply
from weightslab_agent.plan import plan_json_schema
from weightslab_agent.providers import OllamaProvider, OpenRouterProvider, ProviderError

MESSAGES = [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}]


def _closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ollama_chat_sends_the_native_json_format_request(ollama: LLMServer) -> None:
    ollama.script.append(Reply(content='{"steps": []}'))
    provider = OllamaProvider(f"http://127.0.0.1:{ollama.port}", "llama3.2:3b")
    assert provider.chat(MESSAGES, plan_json_schema()) == '{"steps": []}'
    (request,) = ollama.chats()
    assert request.path == "/api/chat"
    assert request.body == {"model": "llama3.2:3b", "messages": MESSAGES, "stream": False, "format": "json",
                            "options": {"temperature": 0}}
    provider.close()


def test_ollama_models_and_health(ollama: LLMServer) -> None:
    provider = OllamaProvider(f"http://127.0.0.1:{ollama.port}", "llama3.2:3b")
    assert [m.id for m in provider.models()] == ["llama3.2:3b", "qwen2.5:7b"]
    probe = provider.probe()
    assert probe.ok and "0.6.2" in probe.message
    assert [r.path for r in ollama.requests] == ["/api/tags", "/api/version"]
    ollama.health_status = 500
    assert not provider.probe().ok


def test_openrouter_chat_sends_bearer_key_and_json_schema_format(openrouter: LLMServer) -> None:
    openrouter.script.append(Reply(content='{"steps": []}'))
    provider = OpenRouterProvider(openrouter.base_url, "openai/gpt-4o-mini", KEY, timeout=5)
    assert provider.chat(MESSAGES, plan_json_schema()) == '{"steps": []}'
    (request,) = openrouter.chats()
    assert request.path == "/api/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.body == {"model": "openai/gpt-4o-mini", "messages": MESSAGES, "temperature": 0,
                            "response_format": {"type": "json_schema", "json_schema": {
                                "name": "query_plan", "strict": False, "schema": plan_json_schema()}}}


def test_openrouter_models_and_probe_use_the_base_url(openrouter: LLMServer) -> None:
    provider = OpenRouterProvider(openrouter.base_url, "m", KEY)
    models = provider.models()
    assert models[0].to_dict() == {"id": "meta-llama/llama-3.3-70b-instruct", "name": "llama-3.3-70b-instruct",
                                   "description": "meta-llama/llama-3.3-70b-instruct model"}
    assert provider.probe().ok
    assert {r.path for r in openrouter.requests} == {"/api/v1/models"}


@pytest.mark.parametrize(("reply", "kind", "words"), [
    (Reply(status=401, body={"error": {"code": 401, "message": "User not found."}}), "unauthorized", "API key"),
    (Reply(status=429, body={"error": {"code": 429, "message": "Rate limit exceeded"}}), "rate_limited",
     "wait a moment"),
    (Reply(status=500, body={"error": {"code": 500, "message": "upstream broke"}}), "server_error", "HTTP 500"),
    (Reply(status=404, body={"error": {"code": 404, "message": "Model x does not exist"}}), "model_not_found",
     "agent models"),
    (Reply(status=200, body={"choices": []}), "malformed", "choices[0]"),
    (Reply(status=200, body={"error": {"code": 429, "message": "Provider rate limited"}}), "rate_limited",
     "HTTP 429"),
])
def test_openrouter_errors_name_the_provider_and_what_to_do(openrouter: LLMServer, reply: Reply, kind: str,
                                                            words: str) -> None:
    openrouter.script.append(reply)
    provider = OpenRouterProvider(openrouter.base_url, "x", KEY, timeout=5)
    with pytest.raises(ProviderError) as err:
        provider.chat(MESSAGES, {})
    assert err.value.kind == kind
    assert str(err.value).startswith("openrouter: ") and words in str(err.value)
    assert KEY not in str(err.value)


def test_openrouter_wrong_key_is_unauthorized_everywhere(openrouter: LLMServer) -> None:
    provider = OpenRouterProvider(openrouter.base_url, "x", "sk-wrong")
    probe = provider.probe()
    assert not probe.ok and probe.details["kind"] == "unauthorized"
    with pytest.raises(ProviderError, match="check the API key") as err:
        provider.models()
    assert "sk-wrong" not in str(err.value)


def test_ollama_model_not_found(ollama: LLMServer) -> None:
    ollama.script.append(Reply(status=404, body={"error": "model 'nope' not found, try pulling it first"}))
    provider = OllamaProvider(f"http://127.0.0.1:{ollama.port}", "nope")
    with pytest.raises(ProviderError, match="ollama pull nope") as err:
        provider.chat(MESSAGES, {})
    assert err.value.kind == "model_not_found"


def test_malformed_replies(ollama: LLMServer) -> None:
    provider = OllamaProvider(f"http://127.0.0.1:{ollama.port}", "m")
    ollama.script.append(Reply(status=200, body={"done": True}))
    with pytest.raises(ProviderError, match="no message.content") as err:
        provider.chat(MESSAGES, {})
    assert err.value.kind == "malformed"


def test_timeout_is_reported_with_the_limit(ollama: LLMServer, openrouter: LLMServer) -> None:
    ollama.script.append(Reply(hang=True))
    with pytest.raises(ProviderError, match=r"within 0.3s") as err:
        OllamaProvider(f"http://127.0.0.1:{ollama.port}", "m", timeout=0.3).chat(MESSAGES, {})
    assert err.value.kind == "timeout"
    openrouter.script.append(Reply(hang=True))
    with pytest.raises(ProviderError, match="openrouter_request_timeout") as err:
        OpenRouterProvider(openrouter.base_url, "m", KEY, timeout=0.3).chat(MESSAGES, {})
    assert err.value.kind == "timeout"


def test_unreachable_server() -> None:
    provider = OllamaProvider(f"http://127.0.0.1:{_closed_port()}", "m")
    with pytest.raises(ProviderError, match="is Ollama running") as err:
        provider.chat(MESSAGES, {})
    assert err.value.kind == "unreachable"
    probe = provider.probe()
    assert not probe.ok and probe.details["kind"] == "unreachable"
