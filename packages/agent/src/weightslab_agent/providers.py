"""LLM providers over plain HTTP (httpx): Ollama (local) and OpenRouter-compatible (cloud).

Each provider turns chat messages into the model's reply text, lists models and probes its
server. Failures become a :class:`ProviderError` whose message names the provider and says
what to do; API keys travel only in the ``Authorization`` header and never appear in a message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

ErrorKind = Literal["unreachable", "unauthorized", "rate_limited", "timeout", "malformed", "model_not_found",
                    "server_error", "bad_request", "not_configured"]
Message = Mapping[str, str]
PROBE_TIMEOUT = 5.0
OLLAMA_CHAT_TIMEOUT = 120.0  # local models on a CPU can take a while
MAX_ERROR_TEXT = 300


class ProviderError(ConnectionError):
    """A provider failure a person can act on (``kind`` classifies it for fallback/tests).

    A ``ConnectionError``: front ends answer it as "service unavailable", never as a bug."""

    def __init__(self, provider: str, kind: ErrorKind, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.kind = kind


@dataclass(frozen=True)
class ModelInfo:
    id: str
    name: str = ""
    description: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name or self.id, "description": self.description}


@dataclass(frozen=True)
class Probe:
    """Result of a real request to the provider's server."""

    ok: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    name: str
    model: str

    def chat(self, messages: Sequence[Message], schema: Mapping[str, Any]) -> str: ...
    def models(self) -> list[ModelInfo]: ...
    def probe(self) -> Probe: ...
    def close(self) -> None: ...


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_TEXT else text[:MAX_ERROR_TEXT] + "..."


def _error_text(response: httpx.Response) -> str:
    """The server's own error message (OpenAI/OpenRouter ``{"error": {"message"}}``, Ollama ``{"error"}``)."""
    try:
        body = response.json()
    except ValueError:
        return _short(response.text)
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return _short(str(err.get("message") or err))
        if err:
            return _short(str(err))
    return _short(response.text)


class _HttpProvider:
    name = "provider"
    model = ""
    _timeout = PROBE_TIMEOUT

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def close(self) -> None:
        self._client.close()

    def _hint(self, kind: ErrorKind) -> str:
        return ""

    def _request(self, method: str, url: str, *, timeout: float, json_body: Any = None,
                 what: str) -> httpx.Response:
        try:
            response = self._client.request(method, url, json=json_body, timeout=timeout)
        except httpx.TimeoutException:
            raise ProviderError(self.name, "timeout",
                                f"no reply to {what} within {timeout:g}s{self._hint('timeout')}") from None
        except httpx.TransportError as exc:
            raise ProviderError(self.name, "unreachable",
                                f"cannot reach {self._base()} ({type(exc).__name__}){self._hint('unreachable')}"
                                ) from None
        if response.status_code >= 400:
            raise self._http_error(response, what)
        return response

    def _base(self) -> str:
        return str(self._client.base_url)

    def _http_error(self, response: httpx.Response, what: str) -> ProviderError:
        code, text = response.status_code, _error_text(response)
        kind: ErrorKind
        if code in (401, 403):
            kind = "unauthorized"
        elif code == 429:
            kind = "rate_limited"
        elif code == 404 and ("model" in text.lower() or what == "chat"):
            kind = "model_not_found"
        elif code == 408 or code == 504:
            kind = "timeout"
        elif code >= 500:
            kind = "server_error"
        else:
            kind = "bad_request"
        return ProviderError(self.name, kind, f"{what} failed with HTTP {code}: {text}{self._hint(kind)}")

    @staticmethod
    def _json(response: httpx.Response, provider: str, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ProviderError(provider, "malformed", f"{what}: the reply is not JSON: {_short(response.text)}"
                                ) from None


class OllamaProvider(_HttpProvider):
    """Ollama's native API: ``POST /api/chat`` (JSON format), ``GET /api/tags``, ``GET /api/version``."""

    name = "ollama"

    def __init__(self, base_url: str, model: str, *, timeout: float = OLLAMA_CHAT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(httpx.Client(base_url=base_url, transport=transport, trust_env=False))
        self.model = model
        self._timeout = timeout

    def _hint(self, kind: ErrorKind) -> str:
        return {"unreachable": "; is Ollama running (`ollama serve`) at agent.ollama_host/agent.ollama_port?",
                "model_not_found": f"; pull it with `ollama pull {self.model}` or choose another model",
                "timeout": "; the local model may be too slow: try a smaller one"}.get(kind, "")

    def chat(self, messages: Sequence[Message], schema: Mapping[str, Any]) -> str:
        body = {"model": self.model, "messages": [dict(m) for m in messages], "stream": False,
                "format": "json", "options": {"temperature": 0}}
        data = self._json(self._request("POST", "/api/chat", timeout=self._timeout, json_body=body, what="chat"),
                          self.name, "chat")
        message = data.get("message") if isinstance(data, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise ProviderError(self.name, "malformed", "chat: the reply has no message.content")
        return content

    def models(self) -> list[ModelInfo]:
        data = self._json(self._request("GET", "/api/tags", timeout=PROBE_TIMEOUT, what="listing models"),
                          self.name, "listing models")
        items = data.get("models") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ProviderError(self.name, "malformed", "listing models: the reply has no 'models' list")
        out = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("name") or item.get("model"), str):
                ident = str(item.get("name") or item.get("model"))
                raw = item.get("details")
                details: dict[str, Any] = raw if isinstance(raw, dict) else {}
                desc = " ".join(str(details[k]) for k in ("parameter_size", "quantization_level") if details.get(k))
                out.append(ModelInfo(ident, ident, desc))
        return out

    def probe(self) -> Probe:
        try:
            data = self._json(self._request("GET", "/api/version", timeout=PROBE_TIMEOUT, what="health probe"),
                              self.name, "health probe")
        except ProviderError as exc:
            return Probe(False, str(exc), {"kind": exc.kind})
        version = data.get("version") if isinstance(data, dict) else None
        return Probe(True, f"ollama {version or '?'} at {self._base().rstrip('/')}", {"version": version})


class OpenRouterProvider(_HttpProvider):
    """OpenAI-compatible chat completions (OpenRouter by default) with a JSON-schema response format."""

    name = "openrouter"

    def __init__(self, base_url: str, model: str, api_key: str, *, timeout: float = 15.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}", "X-Title": "WeightsLab"}
        super().__init__(httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers, transport=transport,
                                      trust_env=False))
        self.model = model
        self._timeout = timeout

    def _hint(self, kind: ErrorKind) -> str:
        return {"unauthorized": "; check the API key (OPENROUTER_API_KEY or `agent init`)",
                "rate_limited": "; wait a moment and ask again, or choose another model",
                "model_not_found": "; list the models (`agent models`) and pick one with `agent model <id>`",
                "unreachable": "; check the network and agent.openrouter_base_url",
                "timeout": "; raise agent.openrouter_request_timeout or try a faster model"}.get(kind, "")

    def chat(self, messages: Sequence[Message], schema: Mapping[str, Any]) -> str:
        body = {"model": self.model, "messages": [dict(m) for m in messages], "temperature": 0,
                "response_format": {"type": "json_schema",
                                    "json_schema": {"name": "query_plan", "strict": False, "schema": dict(schema)}}}
        data = self._json(self._request("POST", "chat/completions", timeout=self._timeout, json_body=body,
                                        what="chat"), self.name, "chat")
        if isinstance(data, dict) and isinstance(data.get("error"), dict):  # errors may arrive with HTTP 200
            err = data["error"]
            code = err.get("code")
            fake = httpx.Response(int(code) if isinstance(code, int) and 400 <= code < 600 else 502,
                                  json={"error": err})
            raise self._http_error(fake, "chat")
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ProviderError(self.name, "malformed", "chat: the reply has no choices[0].message.content") from None
        if not isinstance(content, str):
            raise ProviderError(self.name, "malformed", "chat: the reply's message content is not text")
        return content

    def models(self) -> list[ModelInfo]:
        data = self._json(self._request("GET", "models", timeout=self._timeout, what="listing models"),
                          self.name, "listing models")
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ProviderError(self.name, "malformed", "listing models: the reply has no 'data' list")
        return [ModelInfo(str(item["id"]), str(item.get("name") or item["id"]), _short(str(item.get("description") or "")))
                for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)]

    def probe(self) -> Probe:
        """``GET {base_url}/models`` with the key: proves the server answers (and, where the
        server checks keys on that route, that the key is accepted)."""
        try:
            data = self._json(self._request("GET", "models", timeout=min(self._timeout, PROBE_TIMEOUT),
                                            what="health probe"), self.name, "health probe")
        except ProviderError as exc:
            return Probe(False, str(exc), {"kind": exc.kind})
        count = len(data.get("data") or []) if isinstance(data, dict) else 0
        return Probe(True, f"openrouter at {self._base().rstrip('/')} ({count} models)", {"models": count})


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
