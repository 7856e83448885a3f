"""Local LLM servers for the agent tests: real HTTP on 127.0.0.1 (port 0) speaking the Ollama
and the OpenAI/OpenRouter chat-completions wire formats, with scripted chat replies.

They stand in for a model (which cannot run offline in a unit test); everything on the client
side — httpx, headers, JSON bodies, status codes, timeouts — is the real thing. Every request is
recorded so tests can assert on the exact bodies the providers send.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from weightslab.experiment import Experiment

HANG_SECONDS = 30.0
KEY = "sk-or-v1-agenttestkey0123456789abcdef"  # a made-up key: must never show up anywhere


@dataclass
class Reply:
    """One scripted chat reply: model ``content``, or an HTTP error ``status``/``body``, or ``hang``."""

    content: str | None = None
    status: int = 200
    body: Any = None
    hang: bool = False


def plan_reply(*steps: dict[str, Any], explanation: str = "") -> Reply:
    return Reply(content=json.dumps({"steps": list(steps), "explanation": explanation}))


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class LLMServer:
    """Base: a threaded HTTP server; subclasses route paths."""

    kind: str
    models: list[dict[str, Any]] = field(default_factory=list)
    api_key: str | None = None  # OpenAI flavour: the Bearer key it accepts
    prefix: str = "/api/v1"
    requests: list[Recorded] = field(default_factory=list)
    script: deque[Reply] = field(default_factory=deque)
    release: threading.Event = field(default_factory=threading.Event)
    health_status: int = 200

    def start(self) -> LLMServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else None

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")  # no keep-alive: a stopped server is really gone
                self.close_connection = True
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                server.requests.append(Recorded("GET", self.path, dict(self.headers), None))
                server.route(self, "GET", None)

            def do_POST(self) -> None:
                body = self._body()
                server.requests.append(Recorded("POST", self.path, dict(self.headers), body))
                server.route(self, "POST", body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def chats(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    def next_reply(self) -> Reply:
        return self.script.popleft() if self.script else Reply(status=500, body={"error": "no scripted reply"})

    def route(self, handler: Any, method: str, body: Any) -> None:
        path = handler.path
        if self.kind == "ollama":
            if method == "GET" and path == "/api/version":
                handler._send(self.health_status, {"version": "0.6.2"})
            elif method == "GET" and path == "/api/tags":
                handler._send(200, {"models": self.models})
            elif method == "POST" and path == "/api/chat":
                self._chat(handler, body, ollama=True)
            else:
                handler._send(404, {"error": "404 page not found"})
            return
        auth = handler.headers.get("Authorization", "")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            handler._send(401, {"error": {"code": 401, "message": "No cookie auth credentials found"}})
            return
        if method == "GET" and path == f"{self.prefix}/models":
            handler._send(self.health_status, {"data": self.models})
        elif method == "POST" and path == f"{self.prefix}/chat/completions":
            self._chat(handler, body, ollama=False)
        else:
            handler._send(404, {"error": {"code": 404, "message": "Not Found"}})

    def _chat(self, handler: Any, body: Any, *, ollama: bool) -> None:
        reply = self.next_reply()
        if reply.hang:
            self.release.wait(HANG_SECONDS)  # until the test ends: the client must time out first
            return
        if reply.status != 200 or reply.content is None:
            handler._send(reply.status, reply.body if reply.body is not None else {"error": "scripted"})
            return
        model = (body or {}).get("model", "")
        if ollama:
            handler._send(200, {"model": model, "created_at": "2026-01-01T00:00:00Z",
                                "message": {"role": "assistant", "content": reply.content},
                                "done": True, "done_reason": "stop"})
        else:
            handler._send(200, {"id": "gen-1", "object": "chat.completion", "created": 1, "model": model,
                                "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": reply.content}}],
                                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


def ollama_server(models: list[str] | None = None) -> LLMServer:
    names = models if models is not None else ["llama3.2:3b", "qwen2.5:7b"]
    return LLMServer("ollama", models=[{"name": n, "model": n, "size": 1, "details": {"parameter_size": "3B"}}
                                       for n in names]).start()


def openrouter_server(api_key: str, models: list[str] | None = None) -> LLMServer:
    names = models if models is not None else ["meta-llama/llama-3.3-70b-instruct", "openai/gpt-4o-mini"]
    return LLMServer("openai", api_key=api_key,
                     models=[{"id": n, "name": n.split("/")[-1], "description": f"{n} model"} for n in names]).start()


def write_agent_config(folder: Path, **keys: Any) -> Path:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "agent_config.yaml"
    path.write_text(yaml.safe_dump({"agent": keys}))
    return path


N_TRAIN = 200
N_TEST = 40


def make_experiment(root: Path, environ: dict[str, str] | None = None, pm: Any = None) -> Experiment:
    """A real experiment: train (labels 0..9, loss = i/N) and test splits, a ``blurry`` tag."""
    env = {"GRPC_TLS_ENABLED": "0", "WEIGHTSLAB_LOG_LEVEL": "WARNING", "WEIGHTSLAB_DISABLE_WATCHDOGS": "1",
           "CLI_HOST": "127.0.0.1", "CLI_PORT": "0"}
    env.update(environ or {})
    exp = Experiment(kwargs={"root_log_dir": root}, environ=env, pm=pm, name="agent-test")
    exp.start()
    train = [str(i) for i in range(N_TRAIN)]
    test = [f"t{i}" for i in range(N_TEST)]
    exp.register_samples("train", train, np.arange(N_TRAIN) % 10)
    exp.register_samples("test", test, np.arange(N_TEST) % 10)
    rng = np.random.default_rng(0)
    labels = np.arange(N_TRAIN) % 10
    for step in range(4):  # a few steps with predictions so the mislabel signals exist
        preds = np.where(rng.random(N_TRAIN) < 0.8, labels, (labels + 1) % 10)
        exp.record("loss", np.arange(N_TRAIN) / N_TRAIN + step * 1e-3, train, split="train", preds=preds,
                   targets=labels, is_loss=True)
        exp.step_end()
    exp.record("loss", np.linspace(0, 1, N_TEST), test, split="test")
    exp.edit("tag", ids=[str(i) for i in range(0, 30, 3)], tag="blurry", split="train")
    return exp
