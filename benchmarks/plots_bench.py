"""The Studio's plots board in the browser (system Chromium, headless) through the real Envoy.

A real training job (the Studio tests' ``training_job.py``: the demo's CNN on scikit-learn's
digits, TLS + mTLS + token on 127.0.0.1) logs 10 extra scalar signals with 100,000 steps of
history each before it starts, then one more point per signal and step while it trains; the
page polls its curves every second (the refresh setting). In the page:

1. ``time_to_plots_ms``: navigation start → every bench card drawn from its first read.
2. ``frames``: requestAnimationFrame deltas for ~6 s while training updates arrive, the mouse
   moves over the charts (uPlot cursor) and the plots column scrolls (cards come into view and
   draw): p50 / p95 / max. Target p95 < 20 ms. Baseline in the same run: the same page with the
   plots board collapsed (no curves polled, nothing drawn).
3. ``idle_cpu``: main-thread busy time of the open, untouched tab over 10 s (Chrome's
   ``Performance.getMetrics`` TaskDuration), as a fraction of one core; baseline: board collapsed.
4. ``idle_requests``: requests per second the page sends while nobody touches it, per RPC, with
   the tab visible and then hidden (another tab in front): bounded, and fewer when hidden.

Absolute numbers on a shared 2-core machine are noisy. ``run() -> dict``;
``python benchmarks/plots_bench.py`` prints the JSON.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STUDIO_TESTS = HERE.parent / "packages" / "studio" / "tests"
SIGNALS = 10
STEPS = 100_000
REFRESH_MS = 1000
TARGETS = {"frame_p95_ms": 20.0, "idle_requests_per_second": 5.0}
CARDS_DRAWN = """(n) => {
    const cards = Array.from(document.querySelectorAll('.wl-plot-card'))
        .filter(c => (c.dataset.signals || '').startsWith('bench_') && Number(c.dataset.points || 0) > 0);
    return cards.length >= n ? performance.now() : null;
}"""
FRAMES = """([seconds, scroll]) => new Promise(resolve => {
    const cards = document.querySelector('#plots-cards');
    const deltas = [];
    let last = null, dir = 1;
    const end = performance.now() + seconds * 1000;
    const step = (t) => {
        if (last !== null) deltas.push(t - last);
        last = t;
        if (scroll && cards && cards.scrollHeight > cards.clientHeight) {
            cards.scrollTop += 12 * dir;
            if (cards.scrollTop + cards.clientHeight >= cards.scrollHeight - 1) dir = -1;
            else if (cards.scrollTop <= 0) dir = 1;
        }
        if (t < end) requestAnimationFrame(step); else resolve(deltas);
    };
    requestAnimationFrame(step);
})"""
HIDE = """() => {
    Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
    Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
    document.dispatchEvent(new Event('visibilitychange'));
}"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def _frames(page: Any, seconds: float, hover: bool = False, scroll: bool = False) -> dict[str, Any]:
    """Frame deltas while (optionally) the mouse sweeps over the visible charts / the plots column scrolls."""
    page.evaluate(f"(a) => {{ window.__frames = ({FRAMES})(a); }}", [seconds, scroll])
    if hover:
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            boxes = [b for b in (o.bounding_box() for o in page.locator(".wl-plot-card .u-over").all()[:6]) if b]
            visible = [b for b in boxes if 0 < b["y"] < 900]
            if visible:
                b = visible[i % len(visible)]
                for k in range(10):
                    page.mouse.move(b["x"] + b["width"] * (k + 0.5) / 10, b["y"] + b["height"] / 2)
            i += 1
    deltas = [float(d) for d in page.evaluate("window.__frames")]
    return {"frames": len(deltas), "p50_ms": round(_pct(deltas, 0.5), 2), "p95_ms": round(_pct(deltas, 0.95), 2),
            "max_ms": round(max(deltas), 2) if deltas else None}


def _task_seconds(cdp: Any) -> float:
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return float(metrics.get("TaskDuration", 0.0))


def _idle_cpu(page: Any, cdp: Any, seconds: float) -> float:
    page.mouse.move(2, 2)
    before, t0 = _task_seconds(cdp), time.monotonic()
    page.wait_for_timeout(seconds * 1000)  # the measuring window
    return (_task_seconds(cdp) - before) / (time.monotonic() - t0)


def _requests(page: Any, seconds: float) -> dict[str, Any]:
    seen: Counter[str] = Counter()

    def on_request(request: Any) -> None:
        if request.method == "POST" and "/weightslab.v1.ExperimentService/" in request.url:
            seen[request.url.rsplit("/", 1)[1]] += 1

    page.on("request", on_request)
    t0 = time.monotonic()
    page.wait_for_timeout(seconds * 1000)  # the measuring window (events are delivered meanwhile)
    elapsed = time.monotonic() - t0
    page.remove_listener("request", on_request)
    return {"per_second": round(sum(seen.values()) / elapsed, 3), "by_rpc": dict(sorted(seen.items())),
            "seconds": round(elapsed, 1)}


def _start_job(folder: Path, environ: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    folder.mkdir(parents=True, exist_ok=True)
    ready = folder / "ready.json"
    log = (folder / "job.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(STUDIO_TESTS / "training_job.py"), "--root", str(folder / "root"), "--ready-file", str(ready),
         "--samples", "2000", "--throttle", "0.05", "--extra-signals", str(SIGNALS), "--prefill-steps", str(STEPS)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 300
    while not ready.is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the training job did not start:\n{(folder / 'job.log').read_text()[-3000:]}")
        time.sleep(0.2)
    return process, int(json.loads(ready.read_text())["grpc_port"])


def _stop_job(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def run() -> dict[str, Any]:
    sys.path.insert(0, str(STUDIO_TESTS))
    from playwright.sync_api import sync_playwright
    from studio_testutil import base_environ, free_port, launch_chromium
    from weightslab_auth.pki import create_dev_pki, load_token
    from weightslab_studio.launcher import STATIC_DIR, check_static_dir, launch, make_plan

    check_static_dir(STATIC_DIR)
    with tempfile.TemporaryDirectory(prefix="wl-plots-bench-") as tmp_name:
        tmp = Path(tmp_name)
        pki = create_dev_pki(tmp / "pki")
        env_file = tmp / "empty.env"
        env_file.write_text("")
        environ = base_environ(pki, load_token(pki.directory), env_file)
        process, port = _start_job(tmp / "job", environ)
        try:
            plan = make_plan(environ=environ, backend_host="127.0.0.1", backend_port=port,
                             envoy_host="localhost", envoy_port=free_port(), admin_port=free_port())
            with launch(plan) as handle, sync_playwright() as playwright:
                context = launch_chromium(playwright, tmp / "profile", pki.envoy_server_cert)
                context.set_default_timeout(120_000)
                settings = json.dumps({"plotsAuto": True, "plotsIntervalMs": REFRESH_MS})
                context.add_init_script(f"localStorage.setItem('wl-refresh', {json.dumps(settings)});")
                try:
                    result = _measure(context, handle.url)
                finally:
                    context.close()
        finally:
            _stop_job(process)
    result["signals"] = SIGNALS
    result["steps_per_signal"] = STEPS
    result["plots_refresh_ms"] = REFRESH_MS
    result["cpu_count"] = os.cpu_count()
    return result


def _measure(context: Any, url: str) -> dict[str, Any]:
    # baseline: the board collapsed (no curves polled, no chart drawn)
    context.add_init_script("localStorage.setItem('wl-plots-collapsed', sessionStorage.getItem('wl-bench-open') ? 'false' : 'true');")
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector('body[data-conn="live"]')
    page.wait_for_selector('#plots[data-collapsed="true"]')
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    base_frames = _frames(page, 4)
    base_cpu = _idle_cpu(page, cdp, 8)
    base_requests = _requests(page, 8)
    # the board open: 10 × 100k-step signals plus the job's own
    page.evaluate("sessionStorage.setItem('wl-bench-open', '1')")
    started = time.monotonic()
    page.reload()
    page.wait_for_selector('#plots[data-collapsed="false"]')
    drawn_at = page.wait_for_function(CARDS_DRAWN, arg=SIGNALS, polling=100, timeout=120_000).json_value()
    time_to_plots = float(drawn_at)
    wall_to_plots = (time.monotonic() - started) * 1000
    points = page.evaluate("Array.from(document.querySelectorAll('.wl-plot-card')).map(c => Number(c.dataset.points || 0))")
    page.wait_for_timeout(2000)  # the first draws are done
    busy = {"updates": _frames(page, 6), "updates_and_hover": _frames(page, 6, hover=True),
            "updates_and_scroll": _frames(page, 6, scroll=True)}
    worst = max(v["p95_ms"] for v in busy.values())
    cpu = _idle_cpu(page, cdp, 10)
    visible = _requests(page, 10)
    window = cdp.send("Browser.getWindowForTarget")["windowId"]
    cdp.send("Browser.setWindowBounds", {"windowId": window, "bounds": {"windowState": "minimized"}})
    hidden_by = "minimized window"
    try:
        page.wait_for_function("() => document.visibilityState === 'hidden'", timeout=3_000)
    except Exception:
        # headless Chromium keeps a minimized tab "visible": the page is told what a hidden tab is told
        hidden_by = "visibilityState override + visibilitychange (headless keeps tabs visible)"
        page.evaluate(HIDE)
    state = page.evaluate("document.visibilityState")
    hidden = _requests(page, 20)
    cdp.send("Browser.setWindowBounds", {"windowId": window, "bounds": {"windowState": "normal"}})
    return {
        "time_to_plots_ms": {"navigation_to_drawn": round(time_to_plots, 1), "wall": round(wall_to_plots, 1),
                             "cards": len(points), "points_held": sum(points)},
        "frames": {"baseline_board_collapsed": base_frames, "plots_live": busy,
                   "worst_p95_ratio_vs_baseline": round(worst / base_frames["p95_ms"], 2) if base_frames["p95_ms"] else None,
                   "target_p95": TARGETS["frame_p95_ms"], "meets_target": worst < TARGETS["frame_p95_ms"]},
        "idle_cpu": {"main_thread_fraction": round(cpu, 4), "baseline_board_collapsed": round(base_cpu, 4),
                     "ratio_vs_baseline": round(cpu / base_cpu, 2) if base_cpu else None},
        "idle_requests": {"visible": visible, "hidden": hidden, "hidden_state": state, "hidden_by": hidden_by,
                          "baseline_board_collapsed": base_requests,
                          "bounded": visible["per_second"] < TARGETS["idle_requests_per_second"],
                          "drops_when_hidden": hidden["per_second"] < visible["per_second"],
                          "target_per_second": TARGETS["idle_requests_per_second"]},
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
