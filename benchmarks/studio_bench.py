"""Weights Studio in the browser (system Chromium, headless) through the real Envoy.

A real training job (the Studio tests' ``training_job.py``: the demo's CNN on scikit-learn's
digits, repeated with noise to 10,000 samples; TLS + mTLS + token on 127.0.0.1) is served by
``weightslab studio`` (the built front end). Then, in the page:

1. ``time_to_first_grid``: from navigation start to every visible cell showing a loaded
   thumbnail, 10k samples over localhost. Cold (first visit, empty HTTP cache) and warm
   (median of the next visits). Target < 1.5 s.
2. ``scroll``: frame times (requestAnimationFrame deltas) while the grid scrolls continuously
   for ~3 s: p50 / p95 / max. Target p95 < 20 ms.
3. ``thumbnails``: thumbnails per second served through Envoy to the page's own ``fetch``
   (gRPC-Web over the page's HTTP/2 connection, 4 requests in flight, pages of 64 ids with
   ``GetThumbnails``; ``GetThumbnail`` per id when the backend lacks the batch RPC).

Absolute numbers on a shared 2-core machine are noisy; each phase also reports its spread.
``run() -> dict``; ``python benchmarks/studio_bench.py`` prints the JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STUDIO_TESTS = HERE.parent / "packages" / "studio" / "tests"
TARGETS = {"time_to_first_grid_ms": 1500.0, "scroll_frame_p95_ms": 20.0}
N_SAMPLES = 10_000
WARM_VISITS = 4

FIRST_GRID = """() => {
    const cells = Array.from(document.querySelectorAll('#grid .wl-cell'))
        .filter(c => { const r = c.getBoundingClientRect(); return r.width > 0 && r.bottom > 0 && r.top < innerHeight; });
    if (cells.length === 0) return null;
    const ok = cells.every(c => { const i = c.querySelector('img.wl-thumb'); return i && i.complete && i.naturalWidth > 0; });
    return ok ? {ms: performance.now(), cells: cells.length} : null;
}"""

SCROLL = """async (seconds) => {
    const grid = document.querySelector('#grid');
    let el = grid;
    while (el && el.scrollHeight <= el.clientHeight + 1) el = el.parentElement;
    if (!el) return {error: 'no scrollable grid'};
    el.scrollTop = 0;
    const deltas = [];
    let last = null;
    const end = performance.now() + seconds * 1000;
    await new Promise(resolve => {
        const step = (t) => {
            if (last !== null) deltas.push(t - last);
            last = t;
            el.scrollTop += 40;
            if (t < end && el.scrollTop + el.clientHeight < el.scrollHeight) requestAnimationFrame(step);
            else resolve();
        };
        requestAnimationFrame(step);
    });
    return {deltas, scrolled_px: el.scrollTop};
}"""

THUMBNAIL_LOOP = """async ([path, bodies, perCall, seconds, inFlight]) => {
    const token = sessionStorage.getItem('wl-token');
    const frames = bodies.map(b => { const f = new Uint8Array(5 + b.length);
        new DataView(f.buffer).setUint32(1, b.length); f.set(b, 5); return f; });
    let calls = 0, bytes = 0, errors = 0, next = 0;
    const end = performance.now() + seconds * 1000;
    const started = performance.now();
    const worker = async () => {
        while (performance.now() < end) {
            const body = frames[next++ % frames.length];
            const r = await fetch(path, {method: 'POST', body, headers: {'content-type': 'application/grpc-web+proto',
                'x-grpc-web': '1', 'authorization': 'Bearer ' + token}});
            const data = new Uint8Array(await r.arrayBuffer());
            const tail = new TextDecoder().decode(data.slice(Math.max(0, data.length - 64)));
            if (r.status === 200 && /grpc-status:\\s*0/.test(tail)) { calls++; bytes += data.length; } else errors++;
        }
    };
    await Promise.all(Array.from({length: inFlight}, worker));
    const elapsed = (performance.now() - started) / 1000;
    return {calls, errors, bytes, seconds: elapsed, thumbnails_per_second: calls * perCall / elapsed};
}"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def _thumbnail_bodies(handle: Any) -> tuple[str, list[list[int]], int]:
    """``(path, request bodies, thumbnails per call)``: the batch RPC when the backend has it."""
    from studio_testutil import call
    from weightslab_grpc_server._generated import experiment_pb2 as pb
    from weightslab_studio import grpcweb

    ids = [str(i) for i in range(N_SAMPLES)]
    batch = pb.GetThumbnailsRequest(sample_ids=ids[:64], size=128).SerializeToString()
    reply = call(handle, "GetThumbnails", batch)
    if reply.status == grpcweb.OK:
        assert len(pb.GetThumbnailsResponse.FromString(reply.messages[0]).thumbnails) == 64
        bodies = [list(pb.GetThumbnailsRequest(sample_ids=ids[i:i + 64], size=128).SerializeToString())
                  for i in range(0, 64 * 40, 64)]
        return "/weightslab.v1.ExperimentService/GetThumbnails", bodies, 64
    bodies = [list(pb.GetThumbnailRequest(sample_id=i, size=128).SerializeToString()) for i in ids[:2000]]
    return "/weightslab.v1.ExperimentService/GetThumbnail", bodies, 1


def run() -> dict[str, Any]:
    sys.path.insert(0, str(STUDIO_TESTS))
    from playwright.sync_api import sync_playwright
    from studio_testutil import TrainingJob, base_environ, free_port, launch_chromium
    from weightslab_auth.pki import create_dev_pki, load_token
    from weightslab_studio.launcher import STATIC_DIR, check_static_dir, launch, make_plan

    check_static_dir(STATIC_DIR)
    with tempfile.TemporaryDirectory(prefix="wl-studio-bench-") as tmp_name:
        tmp = Path(tmp_name)
        pki = create_dev_pki(tmp / "pki")
        env_file = tmp / "empty.env"
        env_file.write_text("")
        environ = base_environ(pki, load_token(pki.directory), env_file)
        # slow steps: the job stays live (losses move) without taking a core from the browser
        job = TrainingJob(tmp / "job", environ, samples=N_SAMPLES, throttle=0.5, timeout=300)
        try:
            plan = make_plan(environ=environ, backend_host="127.0.0.1", backend_port=job.grpc_port,
                             envoy_host="localhost", envoy_port=free_port(), admin_port=free_port())
            with launch(plan) as handle, sync_playwright() as playwright:
                context = launch_chromium(playwright, tmp / "profile", pki.envoy_server_cert)
                context.set_default_timeout(60_000)
                try:
                    first_grid = []
                    cells = 0
                    for _ in range(1 + WARM_VISITS):
                        page = context.new_page()
                        page.goto(handle.url)
                        found = page.wait_for_function(FIRST_GRID, polling="raf").json_value()
                        first_grid.append(float(found["ms"]))
                        cells = int(found["cells"])
                        if len(first_grid) <= WARM_VISITS:
                            page.close()
                    scroll = page.evaluate(SCROLL, 3)
                    if "error" in scroll:
                        raise RuntimeError(scroll["error"])
                    deltas = [float(d) for d in scroll["deltas"]]
                    path, bodies, per_call = _thumbnail_bodies(handle)
                    thumbs = page.evaluate(THUMBNAIL_LOOP, [path, bodies, per_call, 4, 4])
                    protocol = page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
                finally:
                    context.close()
        finally:
            job.stop()
    warm = first_grid[1:]
    result = {
        "samples": N_SAMPLES,
        "protocol": protocol,
        "time_to_first_grid_ms": {"cold": round(first_grid[0], 1), "warm_median": round(statistics.median(warm), 1),
                                  "warm_max": round(max(warm), 1), "visible_cells": cells,
                                  "target": TARGETS["time_to_first_grid_ms"],
                                  "meets_target": first_grid[0] < TARGETS["time_to_first_grid_ms"]},
        "scroll": {"frames": len(deltas), "p50_ms": round(_pct(deltas, 0.5), 2),
                   "p95_ms": round(_pct(deltas, 0.95), 2), "max_ms": round(max(deltas), 2) if deltas else None,
                   "scrolled_px": scroll["scrolled_px"], "target_p95": TARGETS["scroll_frame_p95_ms"],
                   "meets_target": _pct(deltas, 0.95) < TARGETS["scroll_frame_p95_ms"]},
        "thumbnails": {"rpc": path.rsplit("/", 1)[1], "per_call": per_call, **{k: round(v, 2) if isinstance(v, float)
                                                                                 else v for k, v in thumbs.items()}},
        "cpu_count": os.cpu_count(),
    }
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
