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
    Page,
    TrainingJob,
    backend_status,
    call,
    chromium,
    launch_studio,
    require_browser,
    wait_for,
)
from weightslab_auth.pki import PKIPaths
from weightslab_studio import grpcweb
from weightslab_studio.launcher import StudioHandle

UI_TIMEOUT_MS = 20_000
SECONDS_PER_BATCH = 0.5  # 600 samples / 32 per batch: a pass of ~10 s, cancelled long before its end


def pb() -> Any:
    from weightslab_grpc_server._generated import experiment_pb2

    return experiment_pb2


@pytest.fixture(scope="module")
def slow_eval_job(tmp_path_factory: pytest.TempPathFactory, environ: dict[str, str]) -> Iterator[TrainingJob]:
    # a fixed evaluation timeout: the slow batches must not be stopped as a timeout before the cancel
    with TrainingJob(tmp_path_factory.mktemp("eval-cancel-job"), {**environ, "WEIGHTSLAB_EVAL_TIMEOUT_SECONDS": "120"},
                     samples=600, throttle=0.05, extra_args=("--slow-eval", str(SECONDS_PER_BATCH))) as job:
        yield job


@pytest.fixture(scope="module")
def studio(built_ui: Path, environ: dict[str, str], envoy_path: Path, slow_eval_job: TrainingJob) -> Iterator[StudioHandle]:
    require_browser()
    with launch_studio(environ, envoy_path, slow_eval_job, built_ui) as handle:
        yield handle


@pytest.fixture(scope="module")
def browser(pki: PKIPaths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(pki, tmp_path_factory.mktemp("chromium-eval-cancel"), UI_TIMEOUT_MS) as context:
        yield context


def evaluation(handle: StudioHandle) -> Any:
    reply = call(handle, "GetEvaluationStatus")
    assert reply.status == grpcweb.OK, reply
    return pb().EvaluationStatus.FromString(reply.messages[0])


@pytest.mark.parametrize("training", ["running", "paused"])
def test_cancel_an_evaluation_from_the_popover(studio: StudioHandle, browser: Any, training: str) -> None:
    assert call(studio, "Resume" if training == "running" else "Pause").status == grpcweb.OK
    if training == "paused":
        wait_for(lambda: backend_status(studio).waiting, 30, "the loop to pause")
    page = Page(browser, shot_prefix="cockpit-", console_errors=False)  # uncaught exceptions judged
    try:
        page.live(studio.url)
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
        page.shot(f"evaluating-{training}")

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
        page.shot(f"eval-cancelled-{training}")
    finally:
        page.close(expect_clean=False)
        assert call(studio, "Resume").status == grpcweb.OK
    assert page.errors == [], page.errors
