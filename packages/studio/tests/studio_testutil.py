"""Helpers of the Studio tests: a real training job in a subprocess (TLS + mTLS + token on
127.0.0.1), free loopback ports, the launcher's environment, gRPC-Web calls through Envoy."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Self

from weightslab_auth.pki import PKIPaths
from weightslab_studio import grpcweb
from weightslab_studio.launcher import StudioHandle, launch, make_plan, probe_context
from weightslab_studio.rpcs import path_of

HERE = Path(__file__).resolve().parent
TRAINING_JOB = HERE / "training_job.py"
REPO = HERE.parents[2]
ARTIFACTS = REPO / "artifacts" / "studio"
IN_CI = bool(os.environ.get("CI"))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until truthy (there is no event to wait on across processes)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def base_environ(pki: PKIPaths, token: str, env_file: Path, **extra: str) -> dict[str, str]:
    """The environment of the launcher and of the training job: the test PKI and token, no .env."""
    env = {"GRPC_TLS_CERT_DIR": str(pki.directory), "GRPC_AUTH_TOKEN": token, "WEIGHTSLAB_ENV_FILE": str(env_file),
           "WEIGHTSLAB_LOG_LEVEL": "WARNING", "HOME": os.environ.get("HOME", "/tmp")}
    env.update(extra)
    return env


class TrainingJob:
    """``training_job.py`` in a subprocess; ``stop()`` ends it."""

    def __init__(self, folder: Path, environ: dict[str, str], *, samples: int = 600, throttle: float = 0.05,
                 timeout: float = 120.0, extra_args: tuple[str, ...] = ()) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.ready_file = folder / "ready.json"
        self.seen_file = folder / "seen.jsonl"
        self.log_file = folder / "job.log"
        env = {**os.environ, **environ, "PYTHONUNBUFFERED": "1"}
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(TRAINING_JOB), "--root", str(folder / "root"), "--ready-file",
                 str(self.ready_file), "--seen-file", str(self.seen_file), "--samples", str(samples),
                 "--throttle", str(throttle), *extra_args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for(lambda: self.ready_file.is_file() or self.process.poll() is not None, timeout,
                     "the training job to serve")
            if self.process.poll() is not None:
                raise AssertionError(f"the training job exited:\n{self.log_file.read_text()[-3000:]}")
            self.grpc_port: int = json.loads(self.ready_file.read_text())["grpc_port"]
        except BaseException:
            self.stop()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def seen(self) -> list[tuple[int, list[str]]]:
        rows = []
        for line in self.seen_file.read_text().splitlines():
            if line.endswith("}"):
                item = json.loads(line)
                rows.append((item["step"], item["ids"]))
        return rows

    def lines(self) -> list[dict[str, Any]]:
        """Every complete line of the seen file (step, ids and, from this job, the optimizer's lr)."""
        return [json.loads(line) for line in self.seen_file.read_text().splitlines() if line.endswith("}")]

    def last_step(self) -> int:
        rows = self.seen()
        return rows[-1][0] if rows else 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:  # well inside WL_TEST_TIMEOUT (a teardown counts): then it is killed
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def call(handle: StudioHandle, method: str, request: bytes = b"", *, token: str | None = "plan",
         timeout: float = 15.0) -> grpcweb.GrpcWebReply:
    """A gRPC-Web call through the handle's Envoy, as the page makes it."""
    plan = handle.plan
    return grpcweb.call(plan.listen_address, plan.envoy_port, path_of(method), request,
                        token=plan.token if token == "plan" else token, context=probe_context(plan),
                        timeout=timeout, origin=plan.origin)


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


# -- the browser (system Chromium driven by Playwright; never `playwright install`) --------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def spki_pin(cert_file: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a certificate: Chromium trusts exactly that key
    (--ignore-certificate-errors-spki-list), not every certificate."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def launch_chromium(playwright: Any, user_data_dir: Path, server_cert: Path, **options: Any) -> Any:
    """A persistent context (a fresh --user-data-dir) of the system Chromium, headless."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=str(CHROMIUM), headless=True,
        args=[*CHROMIUM_FLAGS, f"--ignore-certificate-errors-spki-list={spki_pin(server_cert)}"],
        viewport={"width": 1600, "height": 1000}, **options)


@contextmanager
def chromium(pki: PKIPaths, user_data_dir: Path, timeout_ms: int, **options: Any) -> Iterator[Any]:
    """The browser of the e2e files: the system Chromium trusting the test PKI's Envoy certificate,
    every Playwright wait bounded by ``timeout_ms``; skips (fails in CI) without a browser."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = launch_chromium(playwright, user_data_dir, pki.envoy_server_cert, **options)
        context.set_default_timeout(timeout_ms)
        try:
            yield context
        finally:
            context.close()


def save_shot(page: Any, name: str) -> None:
    """A screenshot to artifacts/studio/<name>.png (gitignored; CI keeps them)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


class Page:
    """A page plus the uncaught exceptions (and, with ``console_errors``, the console errors) it
    produced; attributes not defined here are the Playwright page's. ``with Page(...) as p`` closes
    it at the end without judging its errors (a test does that with ``close()``)."""

    def __init__(self, context: Any, *, shot_prefix: str = "", console_errors: bool = True) -> None:
        self.page = context.new_page()
        self.shot_prefix = shot_prefix
        self.errors: list[str] = []
        if console_errors:
            self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.page, name)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.page.is_closed():
            self.close(expect_clean=False)

    def live(self, url: str) -> Self:
        self.page.goto(url)
        self.page.wait_for_selector('body[data-conn="live"]')
        return self

    def shot(self, name: str) -> None:
        save_shot(self.page, f"{self.shot_prefix}{name}")

    def close(self, *, expect_clean: bool = True) -> None:
        errors = list(self.errors)
        self.page.close()
        if expect_clean:
            assert errors == [], f"console errors: {errors}"


def launch_studio(environ: dict[str, str], envoy_path: Path, job: TrainingJob, static_dir: Path, *,
                  sandbox: bool | None = None) -> StudioHandle:
    """A Studio in front of ``job`` as the e2e files start it: its own Envoy on free ports, the page
    on https://localhost (the certificate's name); ``sandbox=None`` leaves it to the settings.
    ``with launch_studio(...) as handle:`` stops it."""
    plan = make_plan(environ=environ, backend_host="127.0.0.1", backend_port=job.grpc_port, envoy_host="localhost",
                     envoy_port=free_port(), admin_port=free_port(), sandbox=sandbox, static_dir=static_dir)
    return launch(plan, envoy_binary=envoy_path, concurrency=1)


def require_browser() -> None:
    import pytest

    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (apt-get install chromium; .ci/run does it)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (pip install -c constraints.txt playwright)")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def query_request(text: str = "", sort: tuple[str, bool] | None = None, limit: int = 1) -> bytes:
    from weightslab_grpc_server._generated import experiment_pb2 as pb

    request = pb.QuerySamplesRequest(page=pb.Page(limit=limit))
    if text:
        request.query.text = text
    if sort is not None:
        request.sort.add(column=sort[0], descending=sort[1])
    return request.SerializeToString()


def query(handle: StudioHandle, text: str = "", sort: tuple[str, bool] | None = None, limit: int = 1) -> Any:
    from weightslab_grpc_server._generated import experiment_pb2 as pb

    reply = call(handle, "QuerySamples", query_request(text, sort, limit))
    assert reply.status == grpcweb.OK, reply
    return pb.QuerySamplesResponse.FromString(reply.messages[0])


def backend_status(handle: StudioHandle) -> Any:
    from weightslab_grpc_server._generated import experiment_pb2 as pb

    reply = call(handle, "GetStatus")
    assert reply.status == grpcweb.OK, reply
    return pb.GetStatusResponse.FromString(reply.messages[0])


def edit(handle: StudioHandle, action: str, ids: list[str]) -> Any:
    from weightslab_grpc_server._generated import experiment_pb2 as pb

    request = pb.EditSamplesRequest(action=getattr(pb, f"EDIT_ACTION_{action.upper()}"), ids=pb.SampleIds(ids=ids))
    return call(handle, "EditSamples", request.SerializeToString())


def agent_testutil() -> ModuleType:
    """The agent suite's helper module (packages/agent/tests/agent_testutil.py: local model servers
    speaking the Ollama and OpenAI/OpenRouter wire formats, scripted plans), loaded by path and
    reused rather than copied. Registered under its own name, so the agent suite running in the
    same pytest process gets the same module."""
    name = "agent_testutil"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "packages" / "agent" / "tests" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before exec: its dataclasses look their module up
    spec.loader.exec_module(module)
    return module
