"""A lasso over rows the page has not loaded yet, in the system Chromium behind the real Envoy: the
rows' page requests are held back (Playwright routing) while the lasso covers loaded and
not-yet-loaded cells; the selection counts them by position, and tagging resolves the positions
to ids through the view — the backend tags exactly the samples at those positions."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from studio_testutil import (
    Page,
    TrainingJob,
    chromium,
    free_port,
    query,
    require_browser,
    wait_for,
)
from weightslab_auth.pki import PKIPaths
from weightslab_studio.launcher import StudioHandle

UI_TIMEOUT_MS = 20_000
FAR = 200  # the first position of the view's second page (PAGE_SIZE in src/data/view.ts)


@pytest.fixture
def studio(built_ui: Path, start_studio: Callable[..., StudioHandle], job: TrainingJob) -> StudioHandle:
    require_browser()
    return start_studio(backend_port=job.grpc_port, envoy_host="localhost", envoy_port=free_port(),
                        static_dir=built_ui)


@pytest.fixture
def page(pki: PKIPaths, tmp_path: Path) -> Iterator[Page]:
    """Uncaught exceptions are judged (console errors are not)."""
    with chromium(pki, tmp_path / "profile", UI_TIMEOUT_MS) as context:
        yield Page(context, shot_prefix="lasso-", console_errors=False)


def _tagged(studio: StudioHandle, tag: str) -> set[str]:
    from studio_testutil import call
    from weightslab_grpc_server._generated import experiment_pb2 as pb

    reply = call(studio, "ListTags")
    if tag not in {t.name for t in pb.ListTagsResponse.FromString(reply.messages[0]).tags}:
        return set()
    return {r.sample_id for r in query(studio, f"has:{tag}", limit=1000).rows}


def _center(page: Any, index: int) -> tuple[float, float]:
    box = page.locator(f'#grid .wl-slot[data-index="{index}"]').bounding_box()
    assert box, f"no slot at position {index}"
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_a_lasso_over_rows_not_loaded_yet_selects_them_by_position(studio: StudioHandle, page: Page) -> None:
    page.live(studio.url)
    page.wait_for_selector("#grid .wl-cell[data-sample-id]")
    cols = int(page.evaluate("""() => { const xs = new Set(Array.from(document.querySelectorAll('#grid .wl-cell'))
        .map(c => Math.round(c.getBoundingClientRect().left))); return xs.size; }"""))
    held: list[Any] = []
    page.route(re.compile(r".*/weightslab\.v1\.ExperimentService/QuerySamples$"), lambda route: held.append(route))
    try:
        # bring the second page's first rows into view: their slots stay placeholders (rows held back)
        page.evaluate("""([far, cols]) => { const g = document.querySelector('#grid');
            const slot = document.querySelector('#grid .wl-slot[data-index]');
            const rowH = slot.getBoundingClientRect().height + 6;
            g.scrollTop = Math.floor(far / cols) * rowH - g.clientHeight / 2; }""", [FAR, cols])
        start, end = FAR - cols, FAR + cols + 1  # one loaded row above, two rows not loaded
        page.wait_for_selector(f'#grid .wl-slot.wl-loading[data-index="{end}"]')
        assert page.locator(f'#grid .wl-slot[data-index="{start}"]').get_attribute("data-sample-id")
        (x0, y0), (x1, y1) = _center(page, start), _center(page, end)
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
        page.mouse.move(x1, y1, steps=4)
        page.mouse.up()
        # the rectangle between the two cells' centres: their rows and the columns between them
        c0, c1 = sorted((start % cols, end % cols))
        positions = [r * cols + c for r in range(start // cols, end // cols + 1) for c in range(c0, c1 + 1)]
        assert any(i >= FAR for i in positions) and any(i < FAR for i in positions)
        page.wait_for_selector("#action-bar:visible")
        count = page.locator("#sel-count").inner_text()
        assert re.search(rf"\b{len(positions)}\b", count), (count, positions)
        page.shot("unloaded")
    finally:
        pending, held[:] = list(held), []
        for route in pending:
            route.continue_()
        page.unroute(re.compile(r".*/weightslab\.v1\.ExperimentService/QuerySamples$"))
    expected = [r.sample_id for r in query(studio, limit=end + 1).rows]
    want = {expected[i] for i in positions}
    tag = "lasso_far"
    page.fill("#act-tag-name", tag)
    page.click("#act-tag")
    page.wait_for_selector('#toast[data-kind="success"]')
    wait_for(lambda: _tagged(studio, tag) == want, 20, f"the samples at positions {positions} tagged")
    assert page.errors == []
