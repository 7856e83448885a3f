"""The evaluation popover's Cancel and the header's "evaluating" pill, end to end in the system
Chromium: a real training job whose registered evaluation function is slow (a fixed time per
batch), behind the real Envoy, the built front end. Start a pass from the popover, see the pill
say evaluating, press Cancel, see the result say cancelled and the pill go back to the state
training had; the backend's GetEvaluationStatus is the judge. Screenshots: artifacts/studio/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from studio_testutil import (
    ARTIFACTS,
    TrainingJob,
    backend_status,
    call,
    free_port,
    launch_chromium,
    require_browser,
    wait_for,
)
from weightslab_auth.pki import PKIPaths
from weightslab_studio import grpcweb
from weightslab_studio.launcher import StudioHandle, launch, make_plan

UI_TIMEOUT_MS = 20_000
SECONDS_PER_BATCH = 0.5  # 600 samples / 32 per batch: a pass of ~10 s, cancelled long before its end


def pb() -> Any:
    from weightslab_grpc_server._generated import experiment_pb2

    return experiment_pb2


@pytest.fixture(scope="module")
def slow_eval_job(tmp_path_factory: pytest.TempPathFactory, environ: dict[str, str]) -> Iterator[TrainingJob]:
    # a fixed evaluation timeout: the slow batches must not be stopped as a timeout before the cancel
    job = TrainingJob(tmp_path_factory.mktemp("eval-cancel-job"), {**environ, "WEIGHTSLAB_EVAL_TIMEOUT_SECONDS": "120"},
                      samples=600, throttle=0.05, extra_args=("--slow-eval", str(SECONDS_PER_BATCH)))
    try:
        yield job
    finally:
        job.stop()


@pytest.fixture(scope="module")
def studio(built_ui: Path, environ: dict[str, str], envoy_path: Path, slow_eval_job: TrainingJob) -> Iterator[StudioHandle]:
    require_browser()
    plan = make_plan(environ=environ, backend_host="127.0.0.1", backend_port=slow_eval_job.grpc_port,
                     envoy_host="localhost", envoy_port=free_port(), admin_port=free_port(), static_dir=built_ui)
    with launch(plan, envoy_binary=envoy_path, concurrency=1) as handle:
        yield handle


@pytest.fixture(scope="module")
def browser(pki: PKIPaths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = launch_chromium(playwright, tmp_path_factory.mktemp("chromium-eval-cancel"), pki.envoy_server_cert)
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def evaluation(handle: StudioHandle) -> Any:
    reply = call(handle, "GetEvaluationStatus")
    assert reply.status == grpcweb.OK, reply
    return pb().EvaluationStatus.FromString(reply.messages[0])


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"cockpit-{name}.png"), full_page=False)


@pytest.mark.parametrize("training", ["running", "paused"])
def test_cancel_an_evaluation_from_the_popover(studio: StudioHandle, browser: Any, training: str) -> None:
    assert call(studio, "Resume" if training == "running" else "Pause").status == grpcweb.OK
    if training == "paused":
        wait_for(lambda: backend_status(studio).waiting, 30, "the loop to pause")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    try:
        page.goto(studio.url)
        page.wait_for_selector('body[data-conn="live"]')
        page.wait_for_selector(f'#train-state[data-state="{training}"]')
        page.click("#eval-btn")
        page.wait_for_selector("#eval-pop:visible")
        page.wait_for_function("() => Array.from(document.querySelectorAll('#eval-split option')).some(o => o.value === 'train')")
        page.select_option("#eval-split", "train")
        assert page.locator("#eval-cancel").is_disabled()  # nothing to cancel yet
        page.click("#eval-start")
        page.wait_for_selector('#eval-result[data-state="running"]')
        page.wait_for_selector('#train-state[data-state="evaluating"]')
        assert "evaluating" in page.inner_text("#train-state").lower()
        wait_for(lambda: evaluation(studio).progress > 0, 30, "the pass to evaluate its first batches")
        assert backend_status(studio).state == pb().TRAINING_STATE_EVALUATING
        assert page.locator("#eval-cancel").is_enabled() and page.locator("#eval-start").is_disabled()
        shot(page, f"evaluating-{training}")

        page.click("#eval-cancel")
        page.wait_for_selector('#eval-result[data-state="cancelled"]')
        assert "cancelled" in page.inner_text("#eval-result")
        status = wait_for(lambda: (s := evaluation(studio)).state == "cancelled" and s, 30, "the backend's pass cancelled")
        assert status.split == "train" and 0 < status.progress < 1, (status.state, status.progress)
        # the training state found before the pass comes back, in the backend and in the pill
        wanted = pb().TRAINING_STATE_RUNNING if training == "running" else pb().TRAINING_STATE_PAUSED
        wait_for(lambda: backend_status(studio).state == wanted, 30, f"training {training} again")
        page.wait_for_selector(f'#train-state[data-state="{training}"]')
        assert page.locator("#eval-start").is_enabled() and page.locator("#eval-cancel").is_disabled()
        if training == "running":
            step = backend_status(studio).step
            wait_for(lambda: backend_status(studio).step > step, 30, "training to go on after the cancel")
        shot(page, f"eval-cancelled-{training}")
    finally:
        page.close()
        assert call(studio, "Resume").status == grpcweb.OK
    assert errors == [], errors
