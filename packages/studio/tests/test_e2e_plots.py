"""The plots board end to end in the system Chromium: a real training job (digits, TLS + mTLS +
token) behind the real Envoy, the built front end, and the board driven as a person would (mouse
drag to zoom, right-click menu, download buttons). The backend is the judge: curves, markers,
branches and slices are compared with what its gRPC API answers.

Screenshots go to artifacts/studio/ (gitignored; CI keeps them)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest
from studio_testutil import Page as StudioPage
from studio_testutil import (
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

N_SAMPLES = 600
UI_TIMEOUT_MS = 30_000
SLICE_TAG = "plots-review"
SLICE_IDS = [str(i) for i in range(0, 120, 3)]
PLOTS_WIDTH = 300  # a narrow board: few points per chart width, so the first read is downsampled
LOSS_CARD = '.wl-plot-card[data-signals="loss"]'


def pb() -> Any:
    from weightslab_grpc_server._generated import experiment_pb2

    return experiment_pb2


def rpc(handle: StudioHandle, method: str, request: Any = None, reply: str | None = None) -> Any:
    answer = call(handle, method, request.SerializeToString() if request is not None else b"")
    assert answer.status == grpcweb.OK, (method, answer)
    return getattr(pb(), reply or f"{method}Response").FromString(answer.messages[0])


def backend_curves(handle: StudioHandle, signal: str, **fields: Any) -> Any:
    return rpc(handle, "GetCurves", pb().GetCurvesRequest(signals=[signal], **fields))


def total_points(handle: StudioHandle, signal: str) -> int:
    return sum(s.total_points for s in backend_curves(handle, signal, max_points=4).series)


@pytest.fixture(scope="module")
def plots_job(tmp_path_factory: pytest.TempPathFactory, environ: dict[str, str]) -> Iterator[TrainingJob]:
    with TrainingJob(tmp_path_factory.mktemp("plots-job"), environ, samples=N_SAMPLES, throttle=0.01) as job:
        yield job


@pytest.fixture(scope="module")
def studio(built_ui: Path, environ: dict[str, str], envoy_path: Path, plots_job: TrainingJob) -> Iterator[StudioHandle]:
    require_browser()
    with launch_studio(environ, envoy_path, plots_job, built_ui) as handle:
        # a checkpoint to restore
        wait_for(lambda: backend_status(handle).step >= 3, 60, "the first training steps")
        rpc(handle, "SaveCheckpoint", pb().SaveCheckpointRequest(note="plots e2e"), reply="Checkpoint")
        yield handle


@pytest.fixture(scope="module")
def browser(pki: PKIPaths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(pki, tmp_path_factory.mktemp("chromium-plots"), UI_TIMEOUT_MS, accept_downloads=True) as context:
        # every page starts with a narrow plots board and one card per signal
        context.add_init_script(f"localStorage.setItem('wl-plots-width', '{PLOTS_WIDTH}');"
                                "localStorage.removeItem('wl-plots-layout');"
                                "localStorage.removeItem('wl-plots-collapsed');")
        yield context


class Page(StudioPage):
    """The Studio page plus the plots board's cards, charts and step menu."""

    def live(self, url: str) -> Self:
        super().live(url)
        self.page.wait_for_selector(f"{LOSS_CARD} .u-over")  # the board has drawn
        return self

    def card(self, signal: str = "loss") -> dict[str, str]:
        data: dict[str, str] = self.page.evaluate(
            "(s) => Object.assign({}, document.querySelector(`.wl-plot-card[data-signals=\"${s}\"]`)?.dataset)", signal)
        return data

    def chart_box(self, signal: str = "loss") -> dict[str, float]:
        over = self.page.locator(f'.wl-plot-card[data-signals="{signal}"] .u-over')
        over.scroll_into_view_if_needed()  # the cards scroll: the mouse must reach this chart
        box: dict[str, float] = over.bounding_box()
        return box

    def context_menu(self, fraction: float, signal: str = "loss") -> int:
        """Right-click at `fraction` of the chart's width; returns the step the menu is for."""
        box = self.chart_box(signal)
        self.page.mouse.click(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2, button="right")
        self.page.wait_for_selector("#plot-menu:not([hidden])")
        return int(self.page.get_attribute("#plot-menu", "data-step") or -1)


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    with Page(browser) as p:
        yield p


def test_curves_grow_while_training_runs(studio: StudioHandle, page: Page) -> None:
    page.live(studio.url)
    signals = {s for s in page.evaluate("Array.from(document.querySelectorAll('.wl-plot-card')).map(c => c.dataset.signals)")}
    assert {"loss", "accuracy"} <= signals, signals
    # the newest step drawn, not the number of points: once the curve is longer than the card's
    # point budget (a late test in random order) the count stays put while the curve grows
    first = int(page.card()["lastStep"])
    step = backend_status(studio).step
    wait_for(lambda: int(page.card()["lastStep"]) > first, 20, "new loss points in the card")
    assert backend_status(studio).step > step
    branches = page.evaluate(f"Array.from(document.querySelectorAll('{LOSS_CARD} .wl-plot-series')).map(s => s.dataset.branch)")
    assert backend_status(studio).branch in branches
    page.shot("plots-growing")
    page.close()


def test_an_evaluation_pass_adds_a_marker(studio: StudioHandle, page: Page) -> None:
    page.live(studio.url)
    before = len(backend_curves(studio, "loss").markers)
    started = rpc(studio, "StartEvaluation", pb().StartEvaluationRequest(split="train", max_steps=2), reply="EvaluationStatus")
    assert started.state in ("running", "done"), started
    wait_for(lambda: rpc(studio, "GetEvaluationStatus", pb().GetEvaluationStatusRequest(),
                         reply="EvaluationStatus").state == "done", 60, "the evaluation pass to end")
    markers = backend_curves(studio, "loss").markers
    assert len(markers) == before + 1 and markers[-1].kind == "evaluation"
    page.wait_for_selector(f'{LOSS_CARD} .wl-plot-marker[data-kind="evaluation"][data-step="{markers[-1].step}"]')
    assert int(page.card()["markers"]) == len(markers)
    page.shot("plots-eval-marker")
    page.close()


def test_break_by_slices_draws_a_second_series(studio: StudioHandle, page: Page) -> None:
    # tagged here: a restore (another test) brings back the checkpoint's tags
    rpc(studio, "EditSamples", pb().EditSamplesRequest(action=pb().EDIT_ACTION_TAG, ids=pb().SampleIds(ids=SLICE_IDS),
                                                       tag=SLICE_TAG))
    page.live(studio.url)
    page.context_menu(0.5)
    page.click("#plot-menu-slices")
    page.check(f'#slices-form input[value="{SLICE_TAG}"]')
    page.click("#slices-apply")
    page.wait_for_selector(f'{LOSS_CARD} .wl-plot-series[data-kind="slice"], #slices-form .wl-slices-error:not(:empty)',
                           state="attached")
    assert page.locator("#slices-form .wl-slices-error:not(:empty)").count() == 0, \
        page.locator("#slices-form .wl-slices-error").inner_text()
    page.wait_for_selector(f'{LOSS_CARD} .wl-plot-series[data-kind="slice"]')
    expected = rpc(studio, "BreakBySlices", pb().BreakBySlicesRequest(signal="loss", tags=[SLICE_TAG]))
    assert expected.matched_samples == len(SLICE_IDS)
    slices = page.locator(f'{LOSS_CARD} .wl-plot-series[data-kind="slice"]')
    assert slices.count() == len(expected.series)
    assert {slices.nth(i).get_attribute("data-branch") for i in range(slices.count())} == {s.branch for s in expected.series}
    assert int(page.card()["slices"]) >= 1 and int(page.card()["series"]) >= 1
    page.shot("plots-slices")
    page.close()


def test_zoom_asks_the_server_for_the_range_re_downsampled(studio: StudioHandle, page: Page) -> None:
    page.goto(studio.url)
    page.wait_for_selector(f"{LOSS_CARD} .u-over")
    max_points = 2 * int(page.locator(f"{LOSS_CARD} .u-over").bounding_box()["width"])
    # enough history that the first read of a fresh page is downsampled
    wait_for(lambda: total_points(studio, "loss") > 3 * max_points, 100, f"more than {3 * max_points} loss points")
    page.reload()
    page.wait_for_selector(f"{LOSS_CARD} .u-over")
    wait_for(lambda: int(page.card().get("points", "0")) > 0, 20, "the first curve points")
    zoom_requests: list[Any] = []

    def on_request(request: Any) -> None:
        if request.url.endswith("/GetCurves") and request.post_data_buffer:
            body = request.post_data_buffer[5:]
            message = pb().GetCurvesRequest.FromString(body)
            if message.HasField("min_step"):
                zoom_requests.append(message)

    page.on("request", on_request)
    box = page.chart_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.4, y, steps=5)
    page.mouse.up()
    page.wait_for_selector(f'{LOSS_CARD}[data-zoomed="true"]')
    wait_for(lambda: "was" in page.locator(f"{LOSS_CARD} .wl-plot-info").inner_text(), 20, "the re-downsampled range")
    card = page.card()
    assert len(zoom_requests) == 1
    request = zoom_requests[0]
    assert list(request.signals) == ["loss"] and 0 < request.max_step - request.min_step
    assert int(card["visiblePoints"]) > int(card["zoomBefore"]), card
    # the server's answer for that range is what the card shows
    answer = backend_curves(studio, "loss", min_step=request.min_step, max_step=request.max_step,
                            max_points=request.max_points)
    assert int(card["visiblePoints"]) <= sum(len(s.points) for s in answer.series)
    page.shot("plots-zoom")
    page.dblclick(f"{LOSS_CARD} .u-over")
    page.wait_for_selector(f'{LOSS_CARD}[data-zoomed="false"]')
    page.close()


def test_csv_and_png_export(studio: StudioHandle, page: Page) -> None:
    page.live(studio.url)
    with page.expect_download() as download_info:
        page.click(f"{LOSS_CARD} .wl-plot-csv")
    download = download_info.value
    assert download.suggested_filename == "loss.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert rows, "an empty CSV"
    backend = backend_curves(studio, "loss")  # full resolution, read after the export: a superset
    by_series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in rows:
        assert r["signal"] == "loss"
        by_series.setdefault((r["split"], r["branch"]), []).append((int(r["step"]), float(r["value"])))
    for series in backend.series:
        exported = by_series.pop((series.split, series.branch), [])
        points = [(p.step, p.value) for p in series.points]
        assert exported == points[:len(exported)], (series.split, series.branch)
        assert len(exported) >= min(len(points), 1)
    assert by_series == {}, f"CSV series the backend does not have: {list(by_series)}"
    with page.expect_download() as png_info:
        page.click(f"{LOSS_CARD} .wl-plot-png")
    png = Path(png_info.value.path()).read_bytes()
    assert png_info.value.suggested_filename == "loss.png" and png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    page.close()


def test_signals_search_and_merge_into_one_card(studio: StudioHandle, page: Page) -> None:
    page.live(studio.url)
    page.fill("#plots-search", "acc")
    page.wait_for_selector(f"{LOSS_CARD}", state="hidden")
    assert page.locator('.wl-plot-card[data-signals="accuracy"]').is_visible()
    page.fill("#plots-search", "")
    page.select_option(f"{LOSS_CARD} .wl-plot-merge", "accuracy")
    page.wait_for_selector('.wl-plot-card[data-signals="loss,accuracy"]')
    merged = '.wl-plot-card[data-signals="loss,accuracy"]'
    legend = f"Array.from(document.querySelectorAll('{merged} .wl-plot-series')).map(s => s.dataset.signal)"
    wait_for(lambda: {"loss", "accuracy"} <= set(page.evaluate(legend)), 10, "both signals drawn in the merged card")
    page.shot("plots-merged")
    page.click(f"{merged} .wl-plot-split")
    page.wait_for_selector(LOSS_CARD)
    page.close()


def test_restore_from_the_context_menu_starts_a_second_branch(studio: StudioHandle, page: Page) -> None:
    checkpoints = rpc(studio, "ListCheckpoints", pb().ListCheckpointsRequest()).checkpoints
    assert checkpoints
    first = min(c.step for c in checkpoints)
    wait_for(lambda: backend_status(studio).step > first + 30, 60, "training past the checkpoint")
    page.live(studio.url)
    old_branch = backend_status(studio).branch
    step = page.context_menu(0.9)
    assert step >= first
    page.click("#plot-menu-restore")
    page.click("#restore-confirm")
    page.wait_for_selector('#toast[data-kind="success"]')
    new_branch = wait_for(lambda: (b := backend_status(studio).branch) != old_branch and b, 30, "the branch to move")
    restored = [c for c in rpc(studio, "ListCheckpoints", pb().ListCheckpointsRequest()).checkpoints if c.branch == new_branch]
    assert restored or new_branch != old_branch
    wait_for(lambda: backend_status(studio).state == pb().TRAINING_STATE_RUNNING, 30, "training to run again")
    page.wait_for_selector(f'{LOSS_CARD} .wl-plot-series[data-kind="curve"][data-branch="{new_branch}"]')
    page.wait_for_selector(f'{LOSS_CARD} .wl-plot-series[data-kind="curve"][data-branch="{old_branch}"]')
    page.shot("plots-two-branches")
    page.close()


def test_highlight_a_step_in_the_grid(studio: StudioHandle, page: Page) -> None:
    page.live(studio.url)
    step = page.context_menu(0.995)
    page.click("#plot-menu-highlight")
    page.wait_for_selector(".wl-chip")
    assert "last_seen_step" in page.locator("#chips").inner_text()
    page.wait_for_function("() => document.querySelector('#subview-banner').classList.contains('wl-filtered')")
    assert step >= 0
    page.close()


def test_a_note_at_a_step_shows_on_every_card_survives_a_reload_and_can_be_removed(studio: StudioHandle,
                                                                                    page: Page) -> None:
    page.live(studio.url)
    run = backend_status(studio).name
    step = page.context_menu(0.5)
    page.click("#plot-menu-note")
    page.press("#note-text", "Enter")  # empty: refused in the menu
    page.wait_for_selector("#note-error:has-text('type a text')")
    page.fill("#note-text", "lr lowered here")
    page.press("#note-text", "Enter")
    page.wait_for_selector("#plot-menu", state="hidden")
    pin = f'.wl-note-pin[data-step="{step}"]'
    # on every card whose steps reach it (training curves; an eval-only card may start later)
    for signal in ("loss", "accuracy"):
        page.locator(f'.wl-plot-card[data-signals="{signal}"]').scroll_into_view_if_needed()
        page.wait_for_selector(f'.wl-plot-card[data-signals="{signal}"] {pin}')
    assert page.get_attribute(f"{LOSS_CARD} {pin}", "title") == f"note @ step {step:,}: lr lowered here"
    page.hover(f"{LOSS_CARD} {pin}")  # the text on hover (the pin's title)
    stored = page.evaluate("(k) => JSON.parse(localStorage.getItem(k))", f"wl-notes:{run}")
    assert [(n["step"], n["text"]) for n in stored] == [(step, "lr lowered here")]
    page.shot("plots-note")

    page.reload()  # kept in the browser, per run
    page.wait_for_selector('body[data-conn="live"]')
    page.wait_for_selector(f"{LOSS_CARD} {pin}")
    assert "lr lowered here" in page.locator(f'{LOSS_CARD} .wl-plot-note[data-step="{step}"]').inner_text()

    page.click(f'{LOSS_CARD} .wl-plot-note[data-step="{step}"] .wl-note-x')
    # a card out of view repaints when it scrolls back in (the board draws visible cards only)
    for signal in ("loss", "accuracy"):
        card = f'.wl-plot-card[data-signals="{signal}"]'
        page.locator(card).scroll_into_view_if_needed()
        wait_for(lambda card=card: page.locator(f"{card} .wl-note-pin").count() == 0, 20, f"the {card} note pin gone")
    assert page.evaluate("(k) => localStorage.getItem(k)", f"wl-notes:{run}") is None
    page.reload()
    page.wait_for_selector(f"{LOSS_CARD} .u-over")
    assert page.locator(".wl-note-pin, .wl-plot-note").count() == 0
    page.close()
