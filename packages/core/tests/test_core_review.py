"""Regression tests for races and edge cases in the core SDK (training/recorder/edit threads)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from core_testutil import wait_for

torch = pytest.importorskip("torch")


def _tensor_data(n=16, dim=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.TensorDataset(torch.randn(n, dim, generator=g), torch.arange(n) % 3)


def _run_in_thread(fn, timeout=10.0):
    done = threading.Event()
    errors: list[BaseException] = []

    def target():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=target, daemon=True).start()
    return done, errors


# -- splits ------------------------------------------------------------------

def test_testing_guard_inside_a_test_loader_keeps_that_loaders_split(wl):
    """``for batch in test_loader: with guard_testing_context:`` must not record into 'val'."""
    val = wl.watch_or_edit(_tensor_data(8), flag="data", loader_name="val", batch_size=4)
    test = wl.watch_or_edit(_tensor_data(12, seed=1), flag="data", loader_name="test", batch_size=4)
    metric = wl.watch_or_edit(lambda x: x.sum(dim=1), flag="metric", name="score")
    for x, ids, _ in test:
        with wl.guard_testing_context:
            metric(x, batch_ids=ids)
    df = wl.dataframe()
    assert set(df.split) == {"val", "test"}
    assert len(df[df.split == "val"]) == 8  # no phantom rows added to val
    assert df[df.split == "test"]["score"].notna().all()
    assert "score" not in df or df[df.split == "val"]["score"].isna().all()
    del val


def test_training_loader_with_another_name_records_into_its_split(wl):
    loader = wl.watch_or_edit(_tensor_data(8), flag="data", loader_name="mnist_train", batch_size=4,
                              is_training=True)
    loss_fn = wl.watch_or_edit(torch.nn.MSELoss(reduction="none"), flag="loss", name="l")
    for x, ids, _ in loader:
        with wl.guard_training_context:
            loss_fn(x[:, 0], torch.zeros(len(x)), batch_ids=ids)
    df = wl.dataframe()
    assert set(df.split) == {"mnist_train"}
    assert df["l"].notna().all()


def test_nested_loaders_do_not_lose_the_outer_batch(wl):
    """A full pass over another loader inside a training step must not evict the outer batch."""
    train = wl.watch_or_edit(_tensor_data(8), flag="data", loader_name="train", batch_size=4)
    val = wl.watch_or_edit(_tensor_data(40, seed=1), flag="data", loader_name="val", batch_size=2)
    metric = wl.watch_or_edit(lambda x: x.sum(dim=1), flag="metric", name="m")
    for x, ids, _ in train:
        for vx, vids, _ in val:  # 20 batches
            metric(vx, batch_ids=vids)
        metric(x, batch_ids=ids)  # no guard: split comes from the batch itself
    df = wl.dataframe()
    assert len(df[df.split == "val"]) == 40
    assert df[df.split == "train"]["m"].notna().all()


# -- the training hot path ---------------------------------------------------

def test_tensor_ids_from_an_unwatched_loader_never_block_on_the_data_lock(wl):
    """Recording must not drain synchronously (taking data_lock) on the training thread."""
    exp = wl.get_experiment()
    loss_fn = wl.watch_or_edit(torch.nn.MSELoss(reduction="none"), flag="loss", name="l")
    loader = torch.utils.data.DataLoader(list(range(8)), batch_size=4)  # not watched
    held, release = threading.Event(), threading.Event()

    def reader():
        with exp.data_lock:  # a slow reader (e.g. a 1M-row query)
            held.set()
            release.wait(20)

    threading.Thread(target=reader, daemon=True).start()
    assert held.wait(5), "the reader never took data_lock: the test would not test anything"

    def step():
        for ids in loader:
            with wl.guard_training_context:
                loss_fn(torch.ones(len(ids)), torch.zeros(len(ids)), batch_ids=ids)

    done, errors = _run_in_thread(step)
    try:
        assert done.wait(5), "the training step blocked on data_lock"
    finally:
        release.set()
    assert not errors
    df = wl.dataframe()
    assert sorted(df.sample_id.astype(int)) == list(range(8))


def test_in_place_changes_after_recording_do_not_change_what_was_recorded(wl):
    loss_fn = wl.watch_or_edit(torch.nn.MSELoss(reduction="none"), flag="loss", name="l")
    ids = torch.tensor([0, 1, 2])
    losses = loss_fn(torch.tensor([1.0, 2.0, 3.0]), torch.zeros(3), batch_ids=ids)
    losses.mul_(0)  # e.g. weighting the returned per-sample losses in place
    ids.add_(10)  # a reused ids buffer
    buf = np.array([5.0, 6.0])
    wl.save_signals({"np": buf}, batch_ids=np.array([0, 1]))
    buf[:] = -1
    df = wl.dataframe().set_index("sample_id")
    assert sorted(df.index) == ["0", "1", "2"]
    assert df.loc["2", "l"] == 9.0
    assert df.loc["1", "np"] == 6.0


# -- derived signals ---------------------------------------------------------

def test_derived_signal_may_edit_the_experiment_without_deadlock(wl):
    """A derived signal calling the SDK (tagging hard samples) while training holds the main lock."""
    loader = wl.watch_or_edit(_tensor_data(16), flag="data", loader_name="train", batch_size=4)
    loss_fn = wl.watch_or_edit(torch.nn.MSELoss(reduction="none"), flag="loss", name="l")
    started, finished = threading.Event(), threading.Event()

    @wl.signal(name="hard", subscribe_to="l")
    def hard(ctx):
        started.set()
        wl.tag_samples(ctx.sample_ids, tag="seen_by_signal")  # needs the main lock: after the step
        finished.set()
        return ctx.values * 2

    exp = wl.get_experiment()

    def train():
        for x, ids, _ in loader:
            with wl.guard_training_context:
                started.clear()  # before recording: the recorder may fold the batch at once
                loss_fn(x[:, 0], torch.zeros(len(x)), batch_ids=ids)
                exp.recorder._wake.set()  # the recorder thread folds the batch while this step runs
                # the interleaving this test is about: the signal runs while the step holds the lock
                assert started.wait(5), "the derived signal did not run during the training step"
                wl.dataframe()  # a read inside the step (drains)
            # the signal's edit completes once the step released the lock (before the next step,
            # so each step observes its own batch's signal)
            assert finished.wait(5), "the derived signal's edit never completed"
            finished.clear()

    done, errors = _run_in_thread(train)
    assert done.wait(20), "deadlock between the training step and a derived signal"
    assert not errors, errors
    df = wl.dataframe()
    assert df["hard"].notna().all()
    assert df["tag:seen_by_signal"].all()


def test_derived_signal_subscribed_to_its_own_name_does_not_recurse(wl):
    loss_fn = wl.watch_or_edit(torch.nn.MSELoss(reduction="none"), flag="loss", name="l")
    calls = []

    @wl.signal(name="l", subscribe_to="l")  # e.g. smoothing a signal under its own name
    def smooth(ctx):
        calls.append(1)
        return ctx.values / 2

    loss_fn(torch.tensor([2.0, 4.0]), torch.zeros(2), batch_ids=[0, 1])
    df = wl.dataframe().set_index("sample_id")
    assert len(calls) == 1
    assert df.loc["1", "l"] == 8.0
    assert wl.get_experiment().recorder.errors == 0


def test_a_failing_record_does_not_break_readers_or_drop_later_records(wl):
    exp = wl.get_experiment()
    wl.save_signals({"a": np.array([1.0, 2.0])}, batch_ids=["x", "y"])
    bad = exp.recorder._queue[-1]
    bad.values = object()  # cannot be folded
    wl.save_signals({"b": np.array([3.0])}, batch_ids=["z"])
    df = wl.dataframe().set_index("sample_id")  # no exception reaches the reader
    assert df.loc["z", "b"] == 3.0
    assert exp.recorder.errors == 1


# -- data --------------------------------------------------------------------

class _DictDataset(torch.utils.data.Dataset):
    def __init__(self, n=12, size=32):
        self.n, self.size = n, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        image = torch.zeros(3, self.size, self.size)
        image[1, 16, 16] = float(i)  # differs in one middle pixel: repr() would hide it
        return {"image": image, "label": i % 2}


def test_dict_dataset_yields_input_ids_labels_and_filters_discards(wl):
    # Established idiom: dict items yield (inputs, ids, labels), the input and label found by key.
    loader = wl.watch_or_edit(_DictDataset(), flag="data", loader_name="train", batch_size=4, num_workers=1)
    it = iter(loader)
    x, ids, y = next(it)
    assert x.shape[0] == len(ids) == 4 and y.tolist() == [i % 2 for i in ids.tolist()]
    wl.discard_samples([5, 6])  # already prefetched by the worker
    seen = []
    for x, ids, y in it:
        assert len(x) == len(y) == len(ids)
        assert x[:, 1, 16, 16].long().tolist() == ids.tolist()
        seen.extend(ids.tolist())
    assert 5 not in seen and 6 not in seen


def test_compute_hash_sees_the_whole_input_of_dicts_and_large_arrays(wl):
    loader = wl.watch_or_edit(_DictDataset(), flag="data", loader_name="train", compute_hash=True)
    assert len(set(loader.ids)) == 12 and not any("-" in sid for sid in loader.ids)
    again = wl.watch_or_edit(_DictDataset(), flag="data", loader_name="other", compute_hash=True)
    assert again.ids == loader.ids  # content ids are stable


def test_ragged_and_text_labels_are_accepted(wl):
    class Det(torch.utils.data.Dataset):
        targets = [[1, 2], [3], [], [4, 5, 6]]

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.zeros(2), i

    wl.watch_or_edit(Det(), flag="data", loader_name="train")
    xs = (np.zeros((3, 2)), np.array(["cat", "dog", "cat"]))
    wl.watch_or_edit(xs, flag="data", loader_name="val")
    df = wl.dataframe().set_index(["split", "sample_id"])
    assert df.loc[("train", "1"), "label"] == [3]
    assert df.loc[("val", "1"), "label"] == "dog"


# -- hyperparameters ----------------------------------------------------------

def test_a_request_racing_apply_pending_is_not_lost(wl):
    hp = wl.watch_or_edit({"lr": 0.1, "wd": 0.0}, flag="hp")
    real = hp._lock
    injected = []

    class Racy:
        def __enter__(self):
            return real.__enter__()

        def __exit__(self, *exc):
            out = real.__exit__(*exc)
            if not injected:  # another thread requests right after the pending edits were taken
                injected.append(1)
                hp.request("wd", 0.5)
            return out

    hp.request("lr", 0.2)
    hp._lock = Racy()
    hp.apply_pending()
    hp._lock = real
    assert hp.new_pending.is_set(), "the racing request is waiting but the step boundary will not see it"
    hp.apply_pending()
    assert hp["wd"] == 0.5


def test_nested_and_dotted_keys(wl):
    hp = wl.watch_or_edit({"optimizer": {"lr": 0.1}, "model.depth": 3}, flag="hp")
    hp.request("optimizer.lr", 0.2)
    hp.request("model.depth", 4)
    hp.apply_pending()
    assert hp["optimizer.lr"] == 0.2 and hp["model.depth"] == 4


# -- lifecycle ---------------------------------------------------------------

def test_reset_releases_a_paused_training_loop(wl):
    loader = wl.watch_or_edit(_tensor_data(16), flag="data", loader_name="train", batch_size=4)
    exp = wl.get_experiment()
    wl.pause()

    def train():
        for _ in loader:
            pass

    done, errors = _run_in_thread(train)
    wait_for(lambda: exp.control.waiting)
    from weightslab.sdk import reset_experiment

    reset_experiment()
    assert done.wait(10), "the paused loop stays blocked after reset_experiment()"
    assert not errors


def test_nested_training_guards_count_one_step(wl):
    for _ in range(3):
        with wl.guard_training_context:
            with wl.guard_training_context:
                pass
    assert wl.get_age() == 3


def test_per_instance_tensor_values_fold_with_nan_instances(wl, monkeypatch):
    monkeypatch.setenv("WL_INSTANCE_AGGREGATION", "max")
    sig = wl.watch_or_edit(lambda v: v, flag="signal", name="iou", per_instance=True)
    values = torch.tensor([0.2, float("nan"), 0.9, float("nan"), 0.4])
    sig(values, batch_ids=torch.tensor([7, 7, 8, 9, 7]), annotation_ids=torch.arange(5))
    df = wl.dataframe().set_index("sample_id")
    assert df.loc["7", "iou"] == pytest.approx(0.4) and df.loc["8", "iou"] == pytest.approx(0.9)
    assert np.isnan(df.loc["9", "iou"])  # only a NaN instance: no latest value
    breakdown = df.loc["7", "_instance_signals"]["iou"]
    assert set(breakdown) == {"0", "1", "4"} and breakdown["4"] == pytest.approx(0.4)
