"""Label corrections from the Studio, end to end in the system Chromium: a real training job
(digits, labels known up front, suggested labels from its training loss) behind the real Envoy,
the built front end. Relabel two selected samples (keyboard: l, class, Enter), accept the
suggested label of one in the detail modal, revert the other; the backend is the judge (its
table's `label` / `original_label` and its ExportLabels). Bad classes show an inline error (the
page's own check and the server's). Sandbox: the actions are there but disabled, the proxy
refuses the write. Screenshots go to artifacts/studio/labels-*.png."""

from __future__ import annotations

import math
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
    query,
    require_browser,
    wait_for,
)
from weightslab_auth.pki import PKIPaths
from weightslab_studio import grpcweb
from weightslab_studio.launcher import StudioHandle

N_SAMPLES = 600
UI_TIMEOUT_MS = 20_000
FILTER = "suggested_label >= 0"  # samples the run already has a suggestion for


def pb() -> Any:
    from weightslab_grpc_server._generated import experiment_pb2

    return experiment_pb2


@pytest.fixture(scope="module")
def labels_job(tmp_path_factory: pytest.TempPathFactory, environ: dict[str, str]) -> Iterator[TrainingJob]:
    with TrainingJob(tmp_path_factory.mktemp("labels-job"), environ, samples=N_SAMPLES, throttle=0.02) as job:
        yield job


@pytest.fixture(scope="module")
def studio(built_ui: Path, environ: dict[str, str], envoy_path: Path, labels_job: TrainingJob) -> Iterator[StudioHandle]:
    require_browser()
    with launch_studio(environ, envoy_path, labels_job, built_ui, sandbox=False) as handle:
        # a full epoch: every sample has been seen by the loss, so it has a suggested label
        wait_for(lambda: query(handle, FILTER).total >= N_SAMPLES // 2, 90, "suggested labels in the backend")
        assert call(handle, "Pause").status == grpcweb.OK  # the grid's order stays put
        wait_for(lambda: backend_status(handle).waiting, 30, "the loop to pause")
        yield handle


@pytest.fixture(scope="module")
def sandbox_studio(built_ui: Path, environ: dict[str, str], envoy_path: Path, studio: StudioHandle,
                   labels_job: TrainingJob) -> Iterator[StudioHandle]:
    with launch_studio(environ, envoy_path, labels_job, built_ui, sandbox=True) as handle:
        yield handle


@pytest.fixture(scope="module")
def browser(pki: PKIPaths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(pki, tmp_path_factory.mktemp("chromium-labels"), UI_TIMEOUT_MS) as context:
        yield context


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    """Uncaught exceptions fail the test (console errors are not judged here)."""
    p = Page(browser, shot_prefix="labels-", console_errors=False)
    yield p
    p.close()


def _number(value: Any) -> float | None:
    kind = value.WhichOneof("kind")
    if kind is None:
        return None
    number = float(getattr(value, kind))
    return None if math.isnan(number) else number


def labels_of(handle: StudioHandle, ids: list[str]) -> dict[str, dict[str, float | None]]:
    """id -> {label, original_label, suggested_label} as the backend's table holds them."""
    text = "sample_id in (" + ", ".join(f'"{i}"' for i in ids) + ")"
    res = query(handle, text, limit=len(ids))
    names = [c.name for c in res.columns]
    out = {}
    for row in res.rows:
        values = dict(zip(names, row.values, strict=True))
        out[row.sample_id] = {k: _number(values[k]) if k in values else None
                              for k in ("label", "original_label", "suggested_label")}
    assert set(out) == set(ids), (ids, out)
    return out


def exported(handle: StudioHandle) -> dict[str, tuple[int | None, int]]:
    reply = call(handle, "ExportLabels")
    assert reply.status == grpcweb.OK, reply
    res = pb().ExportLabelsResponse.FromString(reply.messages[0])
    return {c.id: (c.original if c.HasField("original") else None, c.corrected) for c in res.labels}


def revert(handle: StudioHandle, ids: list[str]) -> None:
    request = pb().EditSamplesRequest(action=pb().EDIT_ACTION_REVERT_LABEL, ids=pb().SampleIds(ids=ids))
    assert call(handle, "EditSamples", request.SerializeToString()).status == grpcweb.OK


def open_filtered(page: Any, url: str) -> list[str]:
    """The page, live, showing the samples with a suggestion; the ids of the first cells."""
    page.goto(url)
    page.wait_for_selector('body[data-conn="live"]')
    page.fill("#query-input", FILTER)
    page.press("#query-input", "Enter")
    page.wait_for_function("() => document.querySelector('#subview-text')?.textContent.includes('suggested_label')")
    page.wait_for_selector("#grid .wl-cell img.wl-thumb")
    ids: list[str] = page.evaluate("""() => Array.from(document.querySelectorAll('#grid .wl-cell'))
        .sort((a, b) => Number(a.dataset.index) - Number(b.dataset.index)).map(c => c.dataset.sampleId)""")
    return ids


def cell(sample_id: str) -> str:
    return f'#grid .wl-cell[data-sample-id="{sample_id}"]'


def test_relabel_accept_the_suggestion_and_revert_from_the_studio(studio: StudioHandle, page: Any) -> None:
    ids = open_filtered(page, studio.url)
    a, b = ids[0], ids[1]
    before = labels_of(studio, [a, b])
    assert before[a]["original_label"] is None and before[b]["original_label"] is None, before
    suggested_a = int(before[a]["suggested_label"])  # type: ignore[arg-type]
    old = {s: int(before[s]["label"]) for s in (a, b)}  # type: ignore[arg-type]
    new_class = next(c for c in range(10) if c not in {old[a], old[b], suggested_a})
    try:
        # select two cells (click, Ctrl+click), then l: the relabel box of the action bar
        page.click(cell(a))
        page.click(cell(b), modifiers=["Control"])
        page.wait_for_selector("#sel-count:text('2 selected')")
        page.keyboard.press("l")
        assert page.evaluate("document.activeElement.id") == "relabel-input"
        # the page's own check names the value; the server's range check shows inline too
        page.keyboard.type("cat")
        page.keyboard.press("Enter")
        page.wait_for_selector("#relabel-error:visible")
        assert '"cat" is not a class index' in page.inner_text("#relabel-error")
        page.fill("#relabel-input", "12")
        page.press("#relabel-input", "Enter")
        page.wait_for_selector("#relabel-error:has-text('failed')")
        message = page.inner_text("#relabel-error")
        assert "relabel failed" in message and "12" in message and "0..9" in message, message
        assert labels_of(studio, [a, b]) == before  # nothing changed
        page.shot("error")

        page.fill("#relabel-input", str(new_class))
        page.press("#relabel-input", "Enter")
        page.wait_for_selector('#toast[data-kind="success"]')
        after = labels_of(studio, [a, b])
        for s in (a, b):
            assert after[s]["label"] == new_class and after[s]["original_label"] == old[s], after
        assert {s: exported(studio)[s] for s in (a, b)} == {s: (old[s], new_class) for s in (a, b)}
        # the grid marks both corrected cells, and only them
        page.wait_for_selector(f"{cell(a)}.relabeled")
        page.wait_for_selector(f"{cell(b)}.relabeled")
        assert page.locator("#grid .wl-cell.relabeled").count() == 2
        assert f"was {old[a]}" in (page.get_attribute(f"{cell(a)} .wl-fix", "title") or "")
        page.shot("relabelled")

        # the detail modal: label, original, suggestion; accept the suggestion for this sample
        page.keyboard.press("Escape")  # clears the selection
        page.dblclick(cell(a))
        page.wait_for_selector(f'#detail-modal[data-sample-id="{a}"]:not([hidden])')
        assert page.inner_text("#detail-label").strip() == str(new_class)
        assert page.inner_text("#detail-original").strip() == f"corrected · was {old[a]}"
        assert page.inner_text("#detail-suggested").strip() == str(suggested_a)
        page.shot("modal")
        page.click("#detail-relabel-accept")
        wait_for(lambda: labels_of(studio, [a])[a]["label"] == suggested_a, 20, "the suggested label in the backend")
        corrected = suggested_a != old[a]  # accepting the original label removes the correction
        assert labels_of(studio, [a])[a]["original_label"] == (old[a] if corrected else None)
        assert labels_of(studio, [b])[b]["label"] == new_class  # the modal edits its own sample only
        page.wait_for_function("(v) => document.querySelector('#detail-label').textContent.trim() === v",
                               arg=str(suggested_a))
        page.wait_for_selector(f'#detail-modal[data-corrected="{str(corrected).lower()}"]')
        page.keyboard.press("Escape")
        page.wait_for_selector("#detail-modal", state="hidden")

        # revert the other one from the action bar
        page.click(cell(b))
        page.wait_for_selector("#sel-count:text('1 selected')")
        page.click("#relabel-revert")
        wait_for(lambda: labels_of(studio, [b])[b] == before[b], 20, f"sample {b}'s original label back")
        assert b not in exported(studio)
        page.wait_for_selector(f"{cell(b)}:not(.relabeled)")
        assert page.locator(f"{cell(a)}.relabeled").count() == (1 if corrected else 0)
        page.shot("reverted")
    finally:
        revert(studio, [a, b])
    assert labels_of(studio, [a, b]) == before


def test_sandbox_shows_the_label_actions_disabled(sandbox_studio: StudioHandle, page: Any) -> None:
    ids = open_filtered(page, sandbox_studio.url)
    page.click(cell(ids[0]))
    page.wait_for_selector("#action-bar:visible")
    for control in ("#relabel-input", "#relabel-go", "#relabel-accept", "#relabel-revert"):
        assert page.locator(control).is_disabled(), control
        assert "sandbox" in (page.get_attribute(control, "title") or ""), control
    page.keyboard.press("l")  # the shortcut focuses nothing to type into
    assert page.evaluate("document.activeElement.id") != "relabel-input"
    page.dblclick(cell(ids[0]))
    page.wait_for_selector("#detail-modal:not([hidden])")
    for control in ("#detail-relabel-input", "#detail-relabel-go", "#detail-relabel-accept", "#detail-relabel-revert"):
        assert page.locator(control).is_disabled(), control
    page.shot("sandbox")
    # the proxy refuses the write whatever the page does
    request = pb().EditSamplesRequest(action=pb().EDIT_ACTION_RELABEL, ids=pb().SampleIds(ids=ids[:1]), label=1)
    assert call(sandbox_studio, "EditSamples", request.SerializeToString()).status == 7  # PERMISSION_DENIED
    assert ids[0] not in exported(sandbox_studio)
