"""`npm run dev` against the same Envoy: the Vite dev server on VITE_HOST:VITE_PORT (a free
127.0.0.1 port), the page's settings from the VITE_* fallbacks (no launcher-made config.js),
gRPC-Web to a real Envoy started with the dev server's origin allowed through CORS, in front of a
real training job; loaded in the system Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from studio_testutil import TrainingJob, free_port, launch_chromium, require_browser, wait_for
from weightslab_auth.pki import PKIPaths
from weightslab_studio.launcher import StudioHandle

FRONTEND = Path(__file__).resolve().parents[1] / "frontend"
UI_TIMEOUT_MS = 30_000


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - a loopback URL the test built
            return bool(r.status == 200)
    except OSError:
        return False


class ViteDev:
    """`npm run dev` in its own process group (npm starts a shell and node: all stop together)."""

    def __init__(self, environ: dict[str, str], log: Path) -> None:
        npm = shutil.which("npm")
        assert npm, "npm is not on PATH (node_modules is there: install Node 20+ with npm)"
        self.port = int(environ["VITE_PORT"])
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen([npm, "run", "dev"], cwd=FRONTEND, env={**os.environ, **environ},
                                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        try:
            wait_for(lambda: self.process.poll() is not None or _ok(self.url), 60, "the Vite dev server")
            if self.process.poll() is not None:
                raise AssertionError(f"npm run dev exited:\n{log.read_text()[-3000:]}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the group this test started, by its id
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


@pytest.fixture
def dev_env() -> dict[str, str]:
    if not (FRONTEND / "node_modules" / ".bin" / "vite").exists():
        pytest.skip(f"{FRONTEND / 'node_modules'} is missing: run `npm ci` in {FRONTEND} to test `npm run dev`")
    require_browser()
    return {"VITE_HOST": "127.0.0.1", "VITE_PORT": str(free_port())}


@pytest.fixture
def studio_for_dev(start_studio: Callable[..., StudioHandle], job: TrainingJob,
                   dev_env: dict[str, str]) -> StudioHandle:
    # the launcher reads VITE_HOST / VITE_PORT to allow the dev server's origin through CORS
    return start_studio(backend_port=job.grpc_port, envoy_host="localhost", allow_dev_server=True,
                        environ_extra=dev_env)


@pytest.fixture
def vite(studio_for_dev: StudioHandle, dev_env: dict[str, str], tmp_path: Path) -> Iterator[ViteDev]:
    plan = studio_for_dev.plan
    env = {**dev_env, "VITE_SERVER_PROTOCOL": "https", "VITE_SERVER_HOST": "localhost",
           "VITE_SERVER_PORT": str(plan.envoy_port), "VITE_IS_A_SANDBOX": "1"}
    server = ViteDev(env, tmp_path / "vite.log")
    try:
        yield server
    finally:
        server.stop()


def test_npm_run_dev_serves_the_page_against_the_same_envoy(vite: ViteDev, studio_for_dev: StudioHandle,
                                                             pki: PKIPaths, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert studio_for_dev.plan.dev_origin == f"http://127.0.0.1:{vite.port}"
    with sync_playwright() as playwright:
        context = launch_chromium(playwright, tmp_path / "profile", pki.envoy_server_cert)
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
            page.goto(f"{vite.url}#token={studio_for_dev.plan.token}")
            page.wait_for_selector('body[data-conn="live"]')
            # served by Vite (its client is injected), settings from VITE_* (no runtime config)
            assert page.evaluate("!!document.querySelector('script[src=\"/@vite/client\"]')")
            assert page.evaluate("window.WEIGHTSLAB_CONFIG === undefined")
            assert page.evaluate("document.body.classList.contains('wl-sandbox')")  # VITE_IS_A_SANDBOX=1
            assert page.locator(".wl-write").count() == 0
            # the data came through Envoy (another origin: CORS allowed the dev server's)
            page.wait_for_selector("#grid .wl-cell[data-sample-id] img.wl-thumb")
            wait_for(lambda: page.evaluate("""() => Array.from(document.querySelectorAll('#grid img.wl-thumb'))
                .filter(i => i.complete && i.naturalWidth > 0).length""") >= 4, 30, "loaded thumbnails")
            calls: list[Any] = page.evaluate("""() => performance.getEntriesByType('resource')
                .filter(e => e.name.includes('/weightslab.v1.ExperimentService/')).map(e => e.name)""")
            envoy = f"https://localhost:{studio_for_dev.plan.envoy_port}/weightslab.v1.ExperimentService/"
            assert calls and all(c.startswith(envoy) for c in calls), calls[:3]
            assert page.locator("#run-name").inner_text().strip() not in ("", "—")
            assert errors == [], f"console errors: {errors}"
        finally:
            context.close()
