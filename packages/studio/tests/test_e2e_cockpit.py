"""The training cockpit end to end in the system Chromium: a real training job (digits, live
hyperparameters) behind the real Envoy, the built front end, checked against the backend.

Header: the step moves, Pause / Resume / Run N steps (exact), Evaluate…, Save checkpoint and
Restore (the branch moves). Left panel: a hyperparameter edit goes requested → applied and
reaches the optimizer; a bad value shows the server's message; painter mode tags the cells
dragged over; the panel resizes and cards fold. Sandbox: every write control is disabled and
the proxy refuses writes. Screenshots go to artifacts/studio/cockpit-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from studio_testutil import Page as StudioPage
from studio_testutil import (
    TrainingJob,
    backend_status,
    call,
    chromium,
    edit,
    launch_studio,
    query,
    require_browser,
    wait_for,
)
from weightslab_auth.pki import PKIPaths
from weightslab_studio import grpcweb
from weightslab_studio.launcher import StudioHandle

N_SAMPLES = 600
UI_TIMEOUT_MS = 20_000
LR_KEY = "optimizer.lr"


def pb() -> Any:
    from weightslab_grpc_server._generated import experiment_pb2

    return experiment_pb2


@pytest.fixture(scope="module")
def cockpit_job(tmp_path_factory: pytest.TempPathFactory, environ: dict[str, str]) -> Iterator[TrainingJob]:
    with TrainingJob(tmp_path_factory.mktemp("cockpit-job"), environ, samples=N_SAMPLES, throttle=0.05,
                     extra_args=("--hp",)) as job:
        yield job


@pytest.fixture(scope="module")
def studio(built_ui: Path, environ: dict[str, str], envoy_path: Path, cockpit_job: TrainingJob) -> Iterator[StudioHandle]:
    require_browser()
    with launch_studio(environ, envoy_path, cockpit_job, built_ui, sandbox=False) as handle:
        yield handle


@pytest.fixture(scope="module")
def sandbox_studio(built_ui: Path, environ: dict[str, str], envoy_path: Path,
                   cockpit_job: TrainingJob) -> Iterator[StudioHandle]:
    require_browser()
    with launch_studio(environ, envoy_path, cockpit_job, built_ui, sandbox=True) as handle:
        yield handle


@pytest.fixture(scope="module")
def browser(pki: PKIPaths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(pki, tmp_path_factory.mktemp("chromium-cockpit"), UI_TIMEOUT_MS) as context:
        yield context


class Page(StudioPage):
    """The Studio page plus the header's step, training state and status polls."""

    def step(self) -> int:
        text = (self.page.locator("#step").text_content() or "").replace(",", "").strip()
        return int(text) if text.isdigit() else -1

    def state(self) -> str:
        return self.page.locator("#train-state").get_attribute("data-state") or ""

    def status_polls(self) -> int:
        """GetStatus requests the page has made so far (from the resource timing entries)."""
        count: int = self.page.evaluate(
            "performance.getEntriesByType('resource').filter(e => e.name.endsWith('/GetStatus')).length")
        return count

    def after_polls(self, n: int = 3) -> None:
        """Returns once the page has asked for the status `n` more times (what it shows is current)."""
        start = self.status_polls()
        wait_for(lambda: self.status_polls() >= start + n, 20, f"{n} more status polls")

    def settled(self, selector: str) -> None:
        """Returns once `selector` kept its place over two status polls (nothing above it moves it mid-drag)."""
        def same() -> bool:
            before = self.page.locator(selector).bounding_box()
            self.after_polls(2)
            return before == self.page.locator(selector).bounding_box()

        wait_for(same, 30, f"{selector} to stay in place")


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    with Page(browser, shot_prefix="cockpit-") as p:
        yield p


def _pause(studio: StudioHandle) -> None:
    assert call(studio, "Pause").status == grpcweb.OK
    wait_for(lambda: backend_status(studio).waiting, 20, "the loop to wait at a step boundary")


def _resume(studio: StudioHandle) -> None:
    assert call(studio, "Resume").status == grpcweb.OK


@pytest.fixture
def running(studio: StudioHandle) -> Iterator[None]:
    """Training runs at the start, and again at the end whatever the test did."""
    _resume(studio)
    try:
        yield
    finally:
        _resume(studio)


def _hp(studio: StudioHandle) -> dict[str, tuple[Any, Any]]:
    """key -> (applied, requested or None) as the backend reports them."""
    from google.protobuf.json_format import MessageToDict

    reply = call(studio, "GetHyperParameters")
    assert reply.status == grpcweb.OK, reply
    res = pb().GetHyperParametersResponse.FromString(reply.messages[0])
    out = {}
    for p in res.parameters:
        applied = MessageToDict(p.applied)
        requested = MessageToDict(p.requested) if p.HasField("requested") else None
        out[p.key] = (next(iter(applied.values()), None), next(iter(requested.values()), None) if requested else None)
    return out


# ------------------------------------------------------------------------------------------ header


def test_the_step_moves_and_pause_stops_it_and_resume_restarts_it(studio: StudioHandle, page: Page,
                                                                  running: None) -> None:
    page.live(studio.url)
    page.wait_for_selector('#train-state[data-state="running"]')
    first = wait_for(lambda: page.step() if page.step() > 0 else None, 20, "a step in the header")
    wait_for(lambda: page.step() > first, 20, "the step counter to move")
    assert page.locator("#speed").inner_text().strip().endswith("steps/s")
    assert page.locator("#run-name").inner_text().strip() and page.locator("#branch").inner_text().strip() != "—"
    page.shot("running")

    page.click("#pause-btn")
    page.wait_for_selector('#train-state[data-state="paused"]')
    wait_for(lambda: backend_status(studio).waiting, 20, "the loop to stop at a step boundary")
    stopped = backend_status(studio).step
    wait_for(lambda: page.step() == stopped, 20, f"the header to show step {stopped}")
    page.after_polls(3)
    assert page.step() == stopped and backend_status(studio).step == stopped  # it stays stopped
    assert page.locator("#pause-btn").is_disabled() and page.locator("#resume-btn").is_enabled()
    page.shot("paused")

    page.click("#resume-btn")
    page.wait_for_selector('#train-state[data-state="running"]')
    wait_for(lambda: page.step() > stopped, 20, "the step counter to move again")
    page.close()


def test_run_n_steps_stops_after_exactly_n_steps(studio: StudioHandle, page: Page, running: None,
                                                  cockpit_job: TrainingJob) -> None:
    _pause(studio)
    page.live(studio.url)
    page.wait_for_selector('#train-state[data-state="paused"]')
    before, seen_before = backend_status(studio).step, backend_status(studio).samples_seen
    page.click("#run-n-btn")
    page.wait_for_selector("#run-n-pop:visible")
    page.fill("#run-n-input", "0")  # refused in the page, with what is accepted
    page.press("#run-n-input", "Enter")
    page.wait_for_selector("#run-n-error:visible")
    assert "1.." in page.locator("#run-n-error").inner_text()
    page.fill("#run-n-input", "7")
    page.shot("run-n")
    page.press("#run-n-input", "Enter")
    page.wait_for_selector("#run-n-pop", state="hidden")

    def done() -> bool:
        st = backend_status(studio)
        return st.step == before + 7 and not st.HasField("steps_left") and st.waiting

    wait_for(done, 30, f"the loop to stop at step {before + 7}")
    page.wait_for_selector('#train-state[data-state="paused"]')
    wait_for(lambda: page.step() == before + 7, 20, f"the header to show step {before + 7}")
    page.after_polls(3)
    assert backend_status(studio).step == before + 7  # exactly N: no step after the N-th
    trained = [line for line in cockpit_job.lines() if before < line["step"]]
    assert [line["step"] for line in trained] == list(range(before + 1, before + 8)), trained
    # samples seen: exactly the samples of those 7 batches more, in the backend and in the Training card
    served = sum(len(line["ids"]) for line in trained)
    assert backend_status(studio).samples_seen == seen_before + served
    wait_for(lambda: page.locator("#samples-seen").inner_text().replace(",", "") == str(seen_before + served), 20,
             "the Training card's samples seen")
    page.close()


def test_an_evaluation_runs_to_the_end_and_shows_its_result(studio: StudioHandle, page: Page, running: None) -> None:
    page.live(studio.url)
    page.click("#eval-btn")
    page.wait_for_selector("#eval-pop:visible")
    page.wait_for_function("() => Array.from(document.querySelectorAll('#eval-split option')).some(o => o.value === 'train')")
    page.select_option("#eval-split", "train")
    page.click("#eval-start")
    page.wait_for_selector('#eval-result[data-state="done"]', timeout=60_000)
    text = page.locator("#eval-result").inner_text()
    assert "done" in text and "eval_loss" in text, text
    reply = call(studio, "GetEvaluationStatus")
    status = pb().EvaluationStatus.FromString(reply.messages[0])
    assert status.state == "done" and status.split == "train" and status.progress == 1.0
    assert f"{status.metrics['eval_loss']:.4f}".rstrip("0") in text
    page.shot("evaluation")
    page.close()


def test_save_checkpoint_then_restore_moves_the_branch(studio: StudioHandle, page: Page, running: None) -> None:
    page.live(studio.url)
    before = backend_status(studio).branch
    wait_for(lambda: (page.locator("#branch").get_attribute("title") or "").endswith(before), 20, "the branch in the header")

    def checkpoints() -> list[Any]:
        reply = call(studio, "ListCheckpoints")
        return list(pb().ListCheckpointsResponse.FromString(reply.messages[0]).checkpoints)

    known = {c.id for c in checkpoints()}
    page.click("#ckpt-save")
    page.wait_for_selector('#toast[data-kind="success"]')
    new = wait_for(lambda: [c for c in checkpoints() if c.id not in known], 20, "a new checkpoint in the backend")
    saved = new[0]
    assert saved.branch == before and saved.reason == "manual"
    page.click("#ckpt-list-btn")
    row = page.locator(f'#ckpt-rows .wl-ckpt[data-ckpt-id="{saved.id}"]')
    row.wait_for()
    page.shot("checkpoints")
    row.locator("button").click()
    after = wait_for(lambda: backend_status(studio).branch if backend_status(studio).branch != before else None, 30,
                     "the branch to move")
    st = backend_status(studio)  # the page paused training first: the run stands at the checkpoint's step
    assert st.state == pb().TRAINING_STATE_PAUSED and st.step == saved.step, (st.state, st.step, saved.step)
    wait_for(lambda: (page.locator("#branch").get_attribute("title") or "").endswith(after), 20, "the header's new branch")
    assert page.locator("#branch").inner_text().strip() == after[:12]
    page.close()


# ------------------------------------------------------------------------------- left panel


def test_a_hyperparameter_edit_goes_requested_then_applied_and_reaches_the_optimizer(
        studio: StudioHandle, page: Page, running: None, cockpit_job: TrainingJob) -> None:
    _pause(studio)  # paused: the request stays "requested" until training goes on
    page.live(studio.url)
    row = page.locator(f'.wl-hp[data-key="{LR_KEY}"]')
    row.wait_for()
    for key, kind in ((LR_KEY, "number"), ("epochs", "int"), ("augment", "bool"), ("note", "string")):
        assert page.locator(f'.wl-hp[data-key="{key}"]').get_attribute("data-kind") == kind
    new_lr = 0.0005 if _hp(studio)[LR_KEY][0] != 0.0005 else 0.0007
    field = row.locator("input")
    field.fill(str(new_lr))
    field.press("Enter")
    page.wait_for_selector(f'.wl-hp[data-key="{LR_KEY}"][data-phase="requested"]')
    assert "requested" in row.locator(".wl-hp-state").inner_text()
    assert _hp(studio)[LR_KEY][1] == new_lr  # queued in the backend, not applied yet
    page.shot("hparam-requested")
    page.click("#resume-btn")
    page.wait_for_selector(f'.wl-hp[data-key="{LR_KEY}"][data-phase="applied-now"]', timeout=30_000)
    assert "applied" in row.locator(".wl-hp-state").inner_text()
    assert _hp(studio)[LR_KEY] == (new_lr, None)
    # the optimizer trains with it: the job writes the optimizer's lr of every step
    wait_for(lambda: any(line.get("lr") == new_lr for line in cockpit_job.lines()), 30, f"a step with lr {new_lr}")
    page.shot("hparam-applied")
    page.close()


def test_a_bad_hyperparameter_value_shows_the_servers_error_inline(studio: StudioHandle, page: Page) -> None:
    page.live(studio.url)
    row = page.locator(f'.wl-hp[data-key="{LR_KEY}"]')
    row.wait_for()
    applied = _hp(studio)[LR_KEY]
    row.locator("input").fill("fast please")
    row.locator("input").press("Enter")
    error = row.locator(".wl-hp-error")
    error.wait_for()
    assert LR_KEY in error.inner_text() and "expected a number" in error.inner_text(), error.inner_text()
    epochs = page.locator('.wl-hp[data-key="epochs"]')
    epochs.locator("input").fill("2.5")
    epochs.locator("input").press("Enter")
    epochs.locator(".wl-hp-error").wait_for()
    assert "expected an integer" in epochs.locator(".wl-hp-error").inner_text()
    assert _hp(studio)[LR_KEY] == applied  # nothing was queued
    page.shot("hparam-error")
    page.close()


def _center(page: Page, sample_id: str) -> tuple[float, float]:
    box = page.locator(f'#grid .wl-cell[data-sample-id="{sample_id}"]').bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 3


def _tagged(studio: StudioHandle, tag: str) -> set[str]:
    return {r.sample_id for r in query(studio, f"has:{tag}", limit=1000).rows}


def test_painter_mode_tags_the_cells_dragged_over(studio: StudioHandle, page: Page, running: None) -> None:
    _pause(studio)  # the grid's order stays put while painting
    tag = "painted"
    assert not _tagged(studio, tag)
    page.live(studio.url)
    page.wait_for_selector("#grid .wl-cell img.wl-thumb")
    page.fill("#tag-new", tag)
    page.press("#tag-new", "Enter")
    page.wait_for_selector("body.wl-paint-on")
    assert tag in page.locator("#painter-status").inner_text()
    page.settled("#grid")  # banners above the grid (agent, connection) arrive on their own polls
    ids: list[str] = page.evaluate("""() => Array.from(document.querySelectorAll('#grid .wl-cell'))
        .map(c => ({id: c.dataset.sampleId, r: c.getBoundingClientRect()}))
        .filter(c => c.r.width > 0 && c.r.top >= 0 && c.r.bottom < window.innerHeight)
        .sort((a, b) => (a.r.top - b.r.top) || (a.r.left - b.r.left)).map(c => c.id)""")
    stroke, spared = ids[:4], ids[4:8]
    try:
        x, y = _center(page, stroke[0])
        page.mouse.move(x, y)
        page.mouse.down()
        for sample in stroke[1:]:
            x, y = _center(page, sample)
            page.mouse.move(x, y, steps=6)
        page.shot("painting")
        page.mouse.up()
        wait_for(lambda: _tagged(studio, tag) == set(stroke), 20, f"exactly {stroke} tagged {tag!r}")
        assert not _tagged(studio, tag) & set(spared)
        assert page.evaluate("document.querySelectorAll('#grid .wl-cell.selected').length") == 0  # painting ≠ selecting
        page.wait_for_selector(f'#tags .wl-tag-wrap[data-tag="{tag}"] .wl-n:text("4")')
        # erase mode: one click removes it again
        page.click("#paint-mode")
        x, y = _center(page, stroke[0])
        page.mouse.click(x, y)
        wait_for(lambda: _tagged(studio, tag) == set(stroke[1:]), 20, f"{stroke[0]} untagged")
        # a categorical tag: its value set shows under the tag's name
        page.fill("#tag-new", "weather=rainy")
        page.press("#tag-new", "Enter")
        page.wait_for_selector('#painter-status:text("weather=rainy")')
        x, y = _center(page, spared[0])
        page.mouse.click(x, y)
        page.wait_for_selector('#tags .wl-tag-cat[data-tag="weather"] .wl-tag-wrap[data-tag="weather=rainy"] .wl-n:text("1")')
        reply = call(studio, "ListTags")
        weather = [t for t in pb().ListTagsResponse.FromString(reply.messages[0]).tags if t.name == "weather"]
        assert weather and weather[0].kind == pb().TAG_KIND_CATEGORICAL
        assert [(v.value, v.count) for v in weather[0].values] == [("rainy", 1)]
        page.keyboard.press("Escape")
        page.wait_for_selector("body:not(.wl-paint-on)")
        page.shot("painted")
    finally:
        request = pb().EditSamplesRequest(action=pb().EDIT_ACTION_UNTAG, ids=pb().SampleIds(ids=stroke), tag=tag)
        assert call(studio, "EditSamples", request.SerializeToString()).status == grpcweb.OK
        request = pb().EditSamplesRequest(action=pb().EDIT_ACTION_CLEAR_CATEGORY, ids=pb().SampleIds(ids=spared[:1]),
                                          tag="weather")
        assert call(studio, "EditSamples", request.SerializeToString()).status == grpcweb.OK
    page.close()


def test_the_left_panel_resizes_and_its_cards_fold_and_both_persist(studio: StudioHandle, page: Page) -> None:
    page.live(studio.url)
    side = page.locator("#side")
    width = side.bounding_box()["width"]
    handle = page.locator("#side-resizer").bounding_box()
    page.mouse.move(handle["x"] + 2, handle["y"] + 200)
    page.mouse.down()
    page.mouse.move(handle["x"] + 92, handle["y"] + 200, steps=5)
    page.mouse.up()
    wider = side.bounding_box()["width"]
    assert abs(wider - (width + 90)) <= 3, (width, wider)
    # an overlay switched off: the badge shows the label only (and it stays so after a reload)
    page.wait_for_selector("#grid .wl-cell .wl-lab:not([hidden])")
    assert "→" in page.locator("#grid .wl-cell .wl-lab").first.inner_text()
    page.uncheck("#ov-pred")
    page.wait_for_function("() => !Array.from(document.querySelectorAll('#grid .wl-cell .wl-lab')).some(l => l.textContent.includes('→'))")
    page.click('.wl-card[data-card="display"] .wl-card-toggle')
    page.wait_for_selector('.wl-card[data-card="display"].wl-folded')
    assert not page.locator("#cell-size").is_visible()
    page.reload()
    page.wait_for_selector('body[data-conn="live"]')
    assert abs(side.bounding_box()["width"] - wider) <= 1
    assert page.locator('.wl-card[data-card="display"]').get_attribute("class").count("wl-folded") == 1
    assert not page.locator("#ov-pred").is_checked()
    page.wait_for_selector("#grid .wl-cell .wl-lab:not([hidden])")
    assert "→" not in page.locator("#grid .wl-cell .wl-lab").first.inner_text()
    page.shot("layout")
    theme = page.evaluate("document.documentElement.dataset.theme")
    page.click("#theme-toggle")  # the other theme, for the artifacts
    page.wait_for_function(f"document.documentElement.dataset.theme !== {theme!r}")
    page.shot("layout-other-theme")
    page.click("#theme-toggle")
    page.evaluate("['wl-side-width', 'wl-side-folded', 'wl-display'].forEach(k => localStorage.removeItem(k))")  # defaults
    page.close()


def test_refresh_settings_switch_auto_refresh_and_clear_caches(studio: StudioHandle, page: Page) -> None:
    page.live(studio.url)
    page.wait_for_selector("#grid .wl-cell img.wl-thumb")
    page.click("#refresh-btn")
    page.wait_for_selector("#refresh-pop:visible")
    page.fill("#rf-plots-int", "0.1")  # below the floor: refused inline, nothing stored
    page.press("#rf-plots-int", "Enter")
    page.wait_for_selector("#rf-error:visible")
    assert "plots interval" in page.locator("#rf-error").inner_text()
    page.fill("#rf-plots-int", "5")
    page.press("#rf-plots-int", "Enter")
    page.uncheck("#rf-data-auto")
    page.wait_for_selector("#rf-error", state="hidden")
    stored = page.evaluate("JSON.parse(localStorage.getItem('wl-refresh'))")
    assert stored == {"dataAuto": False, "dataIntervalMs": 2500, "plotsAuto": True, "plotsIntervalMs": 5000}, stored
    assert "data off" in (page.locator("#refresh-btn").get_attribute("title") or "")
    page.shot("refresh-settings")
    # "clear caches and reload": the thumbnails are fetched again
    before = page.evaluate("performance.getEntriesByType('resource').filter(e => e.name.endsWith('/GetThumbnails')).length")
    page.click("#clear-cache")
    page.wait_for_selector("#refresh-pop", state="hidden")
    wait_for(lambda: page.evaluate("performance.getEntriesByType('resource')"
                                   ".filter(e => e.name.endsWith('/GetThumbnails')).length") > before, 20,
             "the thumbnails to be fetched again")
    page.evaluate("localStorage.removeItem('wl-refresh')")
    page.close()


def test_keyboard_shortcuts_and_the_help_overlay(studio: StudioHandle, page: Page, running: None) -> None:
    page.live(studio.url)
    page.wait_for_selector('#train-state[data-state="running"]')
    page.keyboard.press("?")
    page.wait_for_selector("#help:visible")
    listed = page.locator("#help").inner_text()
    for keys in ("Shift+P", "Shift+N", "Shift+E", "T", "D", "j · k", "/", "?"):
        assert keys in listed, keys
    page.shot("help")
    page.keyboard.press("Escape")
    page.wait_for_selector("#help", state="hidden")
    page.keyboard.press("Shift+P")
    page.wait_for_selector('#train-state[data-state="paused"]')
    assert backend_status(studio).state == pb().TRAINING_STATE_PAUSED
    page.keyboard.press("Shift+P")
    page.wait_for_selector('#train-state[data-state="running"]')
    page.keyboard.press("Shift+N")
    page.wait_for_selector("#run-n-pop:visible")
    page.keyboard.press("Escape")
    page.wait_for_selector("#run-n-pop", state="hidden")
    # j moves to the next sample; Shift+D discards the focused sample (no selection needed)
    page.wait_for_selector('#grid .wl-cell[data-index="1"]')
    target = page.locator('#grid .wl-cell[data-index="1"]').get_attribute("data-sample-id")
    assert target is not None
    page.keyboard.press("j")
    page.wait_for_selector('#grid .wl-cell.focused[data-index="1"]')
    try:
        page.keyboard.press("Shift+D")
        wait_for(lambda: target in {r.sample_id for r in query(studio, "discarded", limit=1000).rows}, 20,
                 f"sample {target} discarded by the shortcut")
        page.wait_for_selector(f'#grid .wl-cell.discarded[data-sample-id="{target}"]')
    finally:
        assert edit(studio, "restore", [target]).status == grpcweb.OK
    page.keyboard.press("Escape")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "query-input"
    page.close()


# ---------------------------------------------------------------------------------- sandbox

GRPC_WEB_FROM_THE_PAGE = """async ([path, body]) => {
    const frame = new Uint8Array(5 + body.length);
    new DataView(frame.buffer).setUint32(1, body.length);
    frame.set(body, 5);
    const r = await fetch(path, {method: 'POST', body: frame, headers: {
        'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1',
        'authorization': 'Bearer ' + sessionStorage.getItem('wl-token')}});
    const bytes = new Uint8Array(await r.arrayBuffer());
    const trailer = new TextDecoder().decode(bytes.slice(5));
    return {http: r.status, header: r.headers.get('grpc-status'), trailer};
}"""


def test_sandbox_mode_shows_every_panel_read_only_and_the_proxy_refuses_writes(
        sandbox_studio: StudioHandle, page: Page, running: None) -> None:
    page.live(sandbox_studio.url)
    page.wait_for_selector(f'.wl-hp[data-key="{LR_KEY}"] input')
    page.wait_for_selector('#train-state[data-state="running"]')
    controls = page.evaluate("""() => Array.from(document.querySelectorAll('[data-write]'))
        .map(e => ({id: e.id || e.closest('[data-key]')?.dataset.key || e.className, disabled: e.disabled, title: e.title}))""")
    ids = {c["id"] for c in controls}
    for expected in ("pause-btn", "resume-btn", "run-n-btn", "ckpt-save", "tag-new", "tag-new-btn", "paint-mode",
                     "eval-start", "eval-cancel", "run-n-input", "hp-optimizer_lr", "hp-epochs", "hp-augment", "hp-note"):
        assert expected in ids, f"{expected} is not marked as a write control: {sorted(ids)}"
    for c in controls:
        assert c["disabled"] and "sandbox" in c["title"], c
    assert page.locator(".wl-write").count() == 0  # the selection's write controls are not even rendered
    assert "sandbox" in page.locator("#painter-status").inner_text()
    page.click("#eval-btn")
    page.wait_for_selector("#eval-pop:visible")
    assert page.locator("#eval-start").is_disabled()
    page.shot("sandbox")
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+P")  # the shortcut writes nothing either
    page.after_polls(2)
    assert backend_status(sandbox_studio).state == pb().TRAINING_STATE_RUNNING
    # the proxy refuses writes whatever the page does
    for method, body in (("Pause", b""), ("SaveCheckpoint", b""),
                         ("SetHyperParameter", pb().SetHyperParameterRequest(
                             key=LR_KEY, value=pb().Value(number=0.1)).SerializeToString())):
        result = page.evaluate(GRPC_WEB_FROM_THE_PAGE, [f"/weightslab.v1.ExperimentService/{method}", list(body)])
        assert result["header"] == "7" or "grpc-status:7" in result["trailer"], (method, result)
    assert backend_status(sandbox_studio).state == pb().TRAINING_STATE_RUNNING
    assert _hp(sandbox_studio)[LR_KEY][1] is None
    page.close(expect_clean=False)  # the refused calls log 403s in the console
