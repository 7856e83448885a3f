"""PreviewCache: LRU bounds, key canonicalisation, render-once, warm-up wait; PreviewService preload."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from weightslab.settings import load_config
from weightslab_data_cache.preview_cache import PreviewCache
from weightslab_data_cache.preview_service import PreviewService


def _value(n: int = 10, tag: str = "") -> tuple[bytes, str]:
    return (tag.encode() + b"x" * n)[: max(n, len(tag))], "image/jpeg"


def test_lru_eviction_by_count() -> None:
    cache = PreviewCache(max_entries=3, max_bytes=10_000, warmup_wait_ms=0)
    for i in range(3):
        cache.put(i, _value())
    cache.get(0, lambda: pytest.fail("cached"))  # 0 becomes most recent
    cache.put(3, _value())
    assert 1 not in cache and all(k in cache for k in (0, 2, 3))
    assert len(cache) == 3 and cache.stats.evictions == 1


def test_lru_eviction_by_bytes() -> None:
    cache = PreviewCache(max_entries=100, max_bytes=250, warmup_wait_ms=0)
    for i in range(3):
        cache.put(i, _value(100))
    assert len(cache) == 2 and cache.nbytes == 200 and 0 not in cache
    big = cache.get("huge", lambda: _value(1000))  # returned, not kept
    assert len(big[0]) == 1000 and "huge" not in cache and cache.nbytes == 200


def test_int_and_str_ids_share_a_key() -> None:
    cache = PreviewCache(max_entries=10, warmup_wait_ms=0)
    calls = []
    cache.get(7, lambda: calls.append(1) or _value())
    cache.get("7", lambda: calls.append(2) or _value())
    cache.get(np.int64(7), lambda: calls.append(3) or _value())
    cache.get((7, 64), lambda: calls.append(4) or _value())
    cache.get(("7", np.int32(64)), lambda: calls.append(5) or _value())
    assert calls == [1, 4]


def test_concurrent_requests_for_one_sample_render_once() -> None:
    cache = PreviewCache(max_entries=10, warmup_wait_ms=0)
    n = 8
    barrier = threading.Barrier(n)
    started, release = threading.Event(), threading.Event()
    calls = []

    def render() -> tuple[bytes, str]:
        calls.append(threading.current_thread().name)
        started.set()
        release.wait(10)
        return _value(5, "r")

    results: list[tuple[bytes, str]] = []

    def worker(i: int) -> None:
        barrier.wait(10)
        results.append(cache.get(7 if i % 2 else "7", render))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    assert started.wait(10)
    release.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and len(results) == n and len(set(results)) == 1


def test_render_error_reaches_waiters_and_is_not_cached() -> None:
    cache = PreviewCache(max_entries=10, warmup_wait_ms=0)
    with pytest.raises(RuntimeError, match="boom"):
        cache.get(1, lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert 1 not in cache
    assert cache.get(1, lambda: _value())[1] == "image/jpeg"


def test_warmup_builds_the_first_max_entries() -> None:
    cache = PreviewCache(max_entries=5, warmup_wait_ms=0)
    rendered = []
    cache.start_warmup(range(20), lambda i: rendered.append(i) or _value(3), chunk_size=2)
    assert cache.wait_warmup(10)
    assert rendered == [0, 1, 2, 3, 4] and len(cache) == 5 and all(i in cache for i in range(5))


def test_warmup_holds_while_training_is_busy() -> None:
    """The overview renders nothing while ``busy()`` (the training loop stepping), then resumes."""
    cache = PreviewCache(max_entries=5, warmup_wait_ms=0)
    rendered: list[int] = []
    asked = threading.Event()
    busy = [True]

    def is_busy() -> bool:
        asked.set()
        return busy[0]

    cache.start_warmup(range(3), lambda i: rendered.append(i) or _value(3), busy=is_busy)
    assert asked.wait(10) and not cache.wait_warmup(0.3)  # held: still warming, nothing rendered
    assert rendered == []
    assert cache.get(7, lambda: _value(3, "d"))[0].startswith(b"d")  # on demand meanwhile: renders
    busy[0] = False
    assert cache.wait_warmup(10)
    assert rendered == [0, 1, 2]


def test_request_waits_for_the_warmup_instead_of_rendering_twice() -> None:
    cache = PreviewCache(max_entries=10, warmup_wait_ms=1000)
    release = threading.Event()

    def warm_render(i: int) -> tuple[bytes, str]:
        if i == 1:
            release.wait(10)  # held until the request is waiting
        return _value(3, f"w{i}")

    cache.on_warmup_wait = lambda key: release.set()
    cache.start_warmup([0, 1, 2], warm_render)
    on_demand = []
    value = cache.get(1, lambda: on_demand.append(1) or _value(3, "demand"))
    assert on_demand == [] and value[0].startswith(b"w1")
    assert cache.stats.warmup_waits == 1
    cache.wait_warmup(10)


def test_warmup_wait_is_bounded() -> None:
    cache = PreviewCache(max_entries=10, warmup_wait_ms=50)
    release = threading.Event()
    waiting = threading.Event()
    cache.on_warmup_wait = lambda key: waiting.set()
    cache.start_warmup([0], lambda i: release.wait(10) and _value(3, "w"))
    t0 = time.monotonic()
    value = cache.get(0, lambda: _value(3, "demand"))
    elapsed = time.monotonic() - t0
    release.set()
    cache.wait_warmup(10)
    assert waiting.is_set() and value[0].startswith(b"demand")
    assert 0.045 <= elapsed < 5


def test_zero_wait_renders_on_demand_at_once() -> None:
    cache = PreviewCache(max_entries=10, warmup_wait_ms=0)
    release = threading.Event()
    cache.on_warmup_wait = lambda key: pytest.fail("must not wait")
    cache.start_warmup([0], lambda i: release.wait(10) and _value(3, "w"))
    assert cache.get(0, lambda: _value(3, "demand"))[0].startswith(b"demand")
    release.set()
    cache.wait_warmup(10)


def test_ids_outside_the_warmup_do_not_wait() -> None:
    cache = PreviewCache(max_entries=10, warmup_wait_ms=1000)
    release = threading.Event()
    cache.on_warmup_wait = lambda key: pytest.fail("must not wait")
    cache.start_warmup([0], lambda i: release.wait(10) and _value(3, "w"))
    assert cache.get(99, lambda: _value(3, "demand"))[0].startswith(b"demand")
    release.set()
    cache.wait_warmup(10)


def _config(tmp_path: Path, **environ: str) -> Any:
    # validate=False: other plugins' start-up checks (e.g. TLS files) are not under test here
    return load_config(environ=environ, cwd=tmp_path, validate=False)["data_cache"]


def test_warmup_wait_setting_is_clamped(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    with caplog.at_level(logging.WARNING, logger="weightslab"):
        settings = _config(tmp_path, WL_PREVIEW_CACHE_WARMUP_WAIT_MS="5000")
    assert settings.preview_cache_warmup_wait_ms == 1000
    assert any("WL_PREVIEW_CACHE_WARMUP_WAIT_MS" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
    assert _config(tmp_path, WL_PREVIEW_CACHE_WARMUP_WAIT_MS="0").preview_cache_warmup_wait_ms == 0
    assert PreviewService.from_settings(settings, lambda i: i).cache.warmup_wait_ms == 1000
    assert PreviewCache(warmup_wait_ms=5000).warmup_wait_ms == 1000


@pytest.mark.parametrize("preload", ["1", "0"])
def test_preload_on_off(preload: str, tmp_path: Path) -> None:
    settings = _config(tmp_path, WL_PRELOAD_IMAGE_OVERVIEW=preload, WL_MAX_PREVIEW_CACHE_SIZE="3",
                       WL_DEFAULT_THUMBNAIL_SIZE="16")
    loaded = []

    def load(i: object) -> np.ndarray:
        loaded.append(i)
        return np.zeros((32, 32), dtype=np.uint8)

    service = PreviewService.from_settings(settings, load)
    started = service.start(range(10))
    service.cache.wait_warmup(10)
    assert started is (preload == "1")
    assert len(service.cache) == (3 if preload == "1" else 0)
    assert loaded == ([0, 1, 2] if preload == "1" else [])
    data, mime = service.get(1)
    assert mime == "image/jpeg" and loaded.count(1) == 1
    assert Image.open(io.BytesIO(data)).size == (16, 16)  # WL_DEFAULT_THUMBNAIL_SIZE
    service.close()


PIL_ON_FIRST_RENDER_SCRIPT = """
import sys
import numpy as np
from weightslab_data_cache.preview_service import PreviewService

service = PreviewService(lambda i: np.full((8, 6, 3), i / 10), size=4, preload=False)
assert "PIL" not in sys.modules, "creating the preview service imported PIL"
data, mime = service.get(3)
assert "PIL" in sys.modules and mime == "image/jpeg" and data[:2] == b"\\xff\\xd8"
print("ok")
"""


def test_preview_service_imports_pil_on_first_render_only() -> None:
    """``wl.serve`` creates the service for every experiment: PIL (MBs) waits for a thumbnail."""
    done = subprocess.run([sys.executable, "-c", PIL_ON_FIRST_RENDER_SCRIPT], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "ok"


def test_preview_service_default_renderer_is_render_preview() -> None:
    from weightslab_data_cache.previews import render_preview

    samples = {1: np.linspace(0, 1, 48).reshape(4, 4, 3), 2: (np.eye(5), 3)}
    service = PreviewService(samples.__getitem__, size=16, preload=False, preview_fn=lambda s: s)
    for key, sample in samples.items():
        assert service.render(key) == render_preview(sample, 16, preview_fn=lambda s: s)
        assert service.render(key, 9) == render_preview(sample, 9)
