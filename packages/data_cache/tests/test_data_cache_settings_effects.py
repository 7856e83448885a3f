"""Every data_cache setting changes what a real Experiment does, through the plugin's hooks.

A real core ``Experiment`` with this plugin (``weightslab_sample_store`` -> real HDF5 store,
``weightslab_serve`` -> ``experiment.services["previews"]`` warmed from
``experiment.sample_keys(limit=WL_MAX_PREVIEW_CACHE_SIZE)``, ``Experiment.preview``), settings
given as environment variables. Synchronisation is by events and polling with a deadline.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pluggy
import pytest
from PIL import Image
from weightslab import _builtin, hookspecs
from weightslab.data import WatchedLoader
from weightslab.experiment import Experiment
from weightslab_data_cache import plugin
from weightslab_data_cache.h5store import H5SampleStore
from weightslab_data_cache.preview_service import PreviewService

WARMUP_THREAD = "weightslab-preview-warmup"


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        tick.wait(0.002)


def make_pm() -> pluggy.PluginManager:
    """The core and this plugin only: other installed packages cannot interfere."""
    pm = pluggy.PluginManager("weightslab")
    pm.add_hookspecs(hookspecs)
    pm.register(_builtin, name="core")
    pm.register(plugin, name="data_cache")
    return pm


class Images:
    """A map-style dataset of 32x32 images; records every load and can hold one index."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.loads: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self.hold_index: int | None = None  # a warm-up load of this index waits for `release`
        self.holding = threading.Event()
        self.release = threading.Event()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        thread = threading.current_thread().name
        with self._lock:
            self.loads.append((index, thread))
        if index == self.hold_index and thread == WARMUP_THREAD:
            self.holding.set()
            assert self.release.wait(20), "test never released the held warm-up load"
        return np.full((32, 32), index * 7, dtype=np.uint8), index % 2

    def count(self, index: int) -> int:
        with self._lock:
            return sum(1 for i, _ in self.loads if i == index)


@pytest.fixture
def make_experiment(tmp_path: Path) -> Iterator[Callable[..., Experiment]]:
    made: list[Experiment] = []
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")

    def make(root: Path | None = None, **environ: Any) -> Experiment:
        env = {"WEIGHTSLAB_LOG_LEVEL": "WARNING", "WEIGHTSLAB_ENV_FILE": str(empty_env)}
        env.update({k: str(v) for k, v in environ.items()})
        exp = Experiment(kwargs={"root_log_dir": root or tmp_path / f"run{len(made)}"}, environ=env, pm=make_pm())
        exp.start()
        made.append(exp)
        return exp

    yield make
    for exp in made:
        exp.shutdown()


def watch(exp: Experiment, dataset: Any, split: str, is_training: bool = True) -> WatchedLoader:
    # ids_in_items=False: no item is read at registration, so every load counted here is a preview's.
    loader = WatchedLoader(exp, dataset, loader_name=split, batch_size=2, is_training=is_training,
                           ids_in_items=False)
    exp.loaders[split] = loader
    return loader


def serve_previews(exp: Experiment) -> PreviewService:
    """The plugin's real ``weightslab_serve`` hook (what ``wl.serve`` calls)."""
    exp.pm.hook.weightslab_serve(experiment=exp, config=exp.config)
    service = exp.services["previews"]
    assert isinstance(service, PreviewService)
    return service


def size_of(preview: tuple[bytes, str]) -> tuple[int, int]:
    data, mime = preview
    assert mime == "image/jpeg"
    return Image.open(io.BytesIO(data)).size


# -- WEIGHTSLAB_SAVE_PREDICTIONS_IN_H5 ---------------------------------------------------------


@pytest.mark.parametrize("save", ["1", "0"])
def test_save_predictions_in_h5_end_to_end(make_experiment: Callable[..., Experiment], tmp_path: Path,
                                          save: str) -> None:
    root = tmp_path / f"pred-{save}"
    exp = make_experiment(root, WEIGHTSLAB_SAVE_PREDICTIONS_IN_H5=save)
    assert isinstance(exp.store, H5SampleStore)
    ids = ["0", "1", "2", "3"]
    exp.register_samples("train", ids, np.array([0, 1, 2, 3]))
    for step, preds in enumerate(([3, 2, 1, 0], [0, 1, 2, 3])):
        exp.record("loss", np.array([1.0, 2.0, 3.0, 4.0]) / (step + 1), ids, split="train", preds=np.array(preds))
        exp.step_end()
    # in memory either way ("0 keeps them in memory only")
    assert exp.frame().columns["prediction"].tolist() == [0.0, 1.0, 2.0, 3.0]
    exp.shutdown()

    with H5SampleStore(root / "store") as reopened:
        state = reopened.load()
    # the rest of the store is there in both cases
    assert state.curves[("loss", "train", exp.branch)].value.tolist() == [2.5, 1.25]
    if save == "1":
        stored = state.predictions["train"]
        assert [str(s) for s in stored["sample_id"]] == ids * 2
        assert np.asarray(stored["step"]).tolist() == [0] * 4 + [1] * 4
        assert np.asarray(stored["value"]).tolist() == [3, 2, 1, 0, 0, 1, 2, 3]
    else:
        assert state.predictions == {}
        for segment in (root / "store").glob("*.h5"):
            with h5py.File(segment, "r") as f:
                assert "predictions" not in f or len(f["predictions"]) == 0


# -- WL_BATCH_CHUNK_SIZE: HDF5 bulk writes --------------------------------------------------


@pytest.mark.parametrize("chunk", [0, 5])
def test_batch_chunk_size_splits_hdf5_writes(make_experiment: Callable[..., Experiment], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Rows reach HDF5 in pieces of WL_BATCH_CHUNK_SIZE (0 = the whole batch in one write)."""
    pieces: list[int] = []
    lock = threading.Lock()
    create, setitem = h5py.Group.create_dataset, h5py.Dataset.__setitem__

    def spy_create(self: h5py.Group, name: str, *args: Any, **kwargs: Any) -> Any:
        dset = create(self, name, *args, **kwargs)
        if dset.name.startswith("/history/") and dset.name.endswith("/value"):
            with lock:
                pieces.append(int(np.asarray(kwargs["data"]).shape[0]))
        return dset

    def spy_setitem(self: h5py.Dataset, key: Any, value: Any) -> None:
        if self.name.startswith("/history/") and self.name.endswith("/value"):
            with lock:
                pieces.append(int(np.asarray(value).shape[0]))
        setitem(self, key, value)

    monkeypatch.setattr(h5py.Group, "create_dataset", spy_create)
    monkeypatch.setattr(h5py.Dataset, "__setitem__", spy_setitem)
    root = tmp_path / f"chunk-{chunk}"
    exp = make_experiment(root, WL_BATCH_CHUNK_SIZE=chunk)
    assert exp.store.chunk_size == chunk
    ids = [str(i) for i in range(23)]
    exp.register_samples("train", ids)
    values = np.arange(23, dtype=np.float64)
    exp.record("loss", values, ids, split="train")
    exp.shutdown()  # flushes the store: the history segment is written now
    monkeypatch.undo()
    with lock:
        written = list(pieces)
    assert sum(written) >= 23, written
    if chunk == 0:
        assert 23 in written, written  # one write for the whole batch
    else:
        assert max(written) <= chunk and len(written) >= 5, written  # 5+5+5+5+3
    with H5SampleStore(root / "store") as reopened:  # chunking never changes what is stored
        history = reopened.load().history["loss"]
    assert sorted(np.asarray(history.value).tolist()) == values.tolist()


# -- previews through the serve hook ------------------------------------------------------------


def test_serve_hook_builds_previews_from_config_and_warms_the_first_keys(
        make_experiment: Callable[..., Experiment]) -> None:
    exp = make_experiment(WL_MAX_PREVIEW_CACHE_SIZE=3, WL_PRELOAD_IMAGE_OVERVIEW=1, WL_DEFAULT_THUMBNAIL_SIZE=16,
                          WL_PREVIEW_CACHE_WARMUP_WAIT_MS=0)
    val, train = Images(4), Images(6)
    watch(exp, val, "val", is_training=False)  # registered first: training splits still warm first
    watch(exp, train, "train")
    service = serve_previews(exp)
    assert (service.size, service.cache.max_entries, service.preload) == (16, 3, True)
    assert service.cache.wait_warmup(10)
    # the overview: exactly the first WL_MAX_PREVIEW_CACHE_SIZE keys (experiment.sample_keys order)
    assert [i for i, t in train.loads if t == WARMUP_THREAD] == [0, 1, 2] and val.loads == []
    assert len(service.cache) == 3
    # Experiment.preview goes through the service: a warmed sample is not loaded again
    assert size_of(exp.preview("train", "1")) == (16, 16)  # WL_DEFAULT_THUMBNAIL_SIZE
    assert train.count(1) == 1
    assert size_of(exp.preview("train", "1", 8)) == (8, 8)  # an explicit size wins
    # LRU bounded by WL_MAX_PREVIEW_CACHE_SIZE
    for sid in ("3", "4", "5"):
        exp.preview("train", sid)
    exp.preview("val", "0")
    assert len(service.cache) == 3
    exp.preview("train", "0")  # evicted long ago: rendered again
    assert train.count(0) == 2


def test_preload_off_defers_every_render_to_the_first_request(make_experiment: Callable[..., Experiment]) -> None:
    exp = make_experiment(WL_PRELOAD_IMAGE_OVERVIEW=0, WL_DEFAULT_THUMBNAIL_SIZE=20)
    train = Images(6)
    watch(exp, train, "train")
    service = serve_previews(exp)
    assert service.preload is False and not service.cache.warming_up
    assert train.loads == [] and len(service.cache) == 0
    assert size_of(exp.preview("train", "4")) == (20, 20)
    assert [i for i, _ in train.loads] == [4] and len(service.cache) == 1


@pytest.mark.parametrize("wait_ms", [1000, 0])
def test_warmup_wait_ms_decides_between_waiting_and_rendering_twice(
        make_experiment: Callable[..., Experiment], wait_ms: int) -> None:
    exp = make_experiment(WL_PREVIEW_CACHE_WARMUP_WAIT_MS=wait_ms, WL_MAX_PREVIEW_CACHE_SIZE=10)
    train = Images(4)
    train.hold_index = 1  # the warm-up is held while it loads sample 1
    watch(exp, train, "train")
    waits: list[Any] = []
    service: PreviewService | None = None
    try:
        service = serve_previews(exp)
        assert service.cache.warmup_wait_ms == wait_ms
        assert train.holding.wait(10)

        def on_wait(key: Any) -> None:
            waits.append(key)
            train.release.set()  # the warm-up finishes sample 1 while the request waits for it

        service.cache.on_warmup_wait = on_wait
        preview = exp.preview("train", "1")
    finally:
        train.release.set()
    assert service.cache.wait_warmup(10)
    assert size_of(preview) == (32, 32)  # never upscaled
    if wait_ms:
        assert len(waits) == 1
        assert train.count(1) == 1  # decoded once: the request took the warm-up's result
    else:
        assert waits == []
        assert train.count(1) == 2  # no wait: rendered on demand while the warm-up rendered it too


@pytest.mark.parametrize("chunk", [0, 1])
def test_batch_chunk_size_lets_the_warmup_skip_what_was_rendered_meanwhile(
        make_experiment: Callable[..., Experiment], chunk: int) -> None:
    """The warm-up processes WL_BATCH_CHUNK_SIZE samples at a time and re-checks the cache
    between chunks; 0 = the whole overview is planned at once."""
    exp = make_experiment(WL_BATCH_CHUNK_SIZE=chunk, WL_PREVIEW_CACHE_WARMUP_WAIT_MS=0)
    train = Images(4)
    train.hold_index = 0
    watch(exp, train, "train")
    service: PreviewService | None = None
    try:
        service = serve_previews(exp)
        assert service.chunk_size == chunk
        assert train.holding.wait(10)
        exp.preview("train", "2")  # rendered on demand while the warm-up is held at sample 0
        assert train.count(2) == 1
    finally:
        train.release.set()
    assert service.cache.wait_warmup(10)
    assert train.count(2) == (1 if chunk == 1 else 2)
    assert len(service.cache) == 4


def test_default_thumbnail_size_without_serving(make_experiment: Callable[..., Experiment],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """No preview service (not serving): the preview hook's default size is the setting too.

    The hook receives the experiment's config (here resolved from its own environment); before
    the fix it used the built-in 720 unless wl.serve had run."""
    monkeypatch.setattr(plugin, "_configured", None)  # nothing configured by an earlier wl.serve
    monkeypatch.setenv("WL_DEFAULT_THUMBNAIL_SIZE", "999")  # the process env is not this experiment's
    exp = make_experiment(WL_DEFAULT_THUMBNAIL_SIZE=16)
    watch(exp, Images(3), "train")
    assert "previews" not in exp.services
    assert size_of(exp.preview("train", "1")) == (16, 16)
    assert size_of(exp.preview("train", "1", 8)) == (8, 8)
    # the experiment resolved its config once: a later process env change does not leak in
    monkeypatch.setenv("WL_DEFAULT_THUMBNAIL_SIZE", "24")
    assert size_of(exp.preview("train", "1")) == (16, 16)


@pytest.mark.parametrize(("shape", "overview"), [((32,), False), ((32, 32), True)])
def test_the_overview_is_built_for_images_not_for_vectors(make_experiment: Callable[..., Experiment],
                                                          shape: tuple[int, ...], overview: bool) -> None:
    """WL_PRELOAD_IMAGE_OVERVIEW builds an image overview: for tabular rows (a 1-D input per item)
    the background warm-up stops at the first (2,000 line plots would hold tens of MB and compete
    with queries); a vector's preview still renders on request."""
    exp = make_experiment(WL_PRELOAD_IMAGE_OVERVIEW=1, WL_MAX_PREVIEW_CACHE_SIZE=4, WL_DEFAULT_THUMBNAIL_SIZE=20)
    items = [(np.linspace(0.0, 1.0, int(np.prod(shape))).reshape(shape), i % 2) for i in range(6)]
    watch(exp, items, "train")
    service = serve_previews(exp)
    assert service.cache.wait_warmup(20)
    assert service.cache.stats.warmup_renders == (4 if overview else 1)  # a vector: the first only
    assert size_of(exp.preview("train", "3"))[0] == 20  # on request either way
