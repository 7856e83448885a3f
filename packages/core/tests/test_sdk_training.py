"""The SDK on a real (small) PyTorch training loop."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import yaml
from core_testutil import noisy_digits, wait_for

torch = pytest.importorskip("torch")


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def _setup(wl, n=256, batch_size=32, shuffle=True, hp=None):
    torch.set_num_threads(1)
    x, _, y_noisy, noisy = noisy_digits(n)
    train = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y_noisy))
    model = wl.watch_or_edit(_model(), flag="model")
    params = wl.watch_or_edit(hp or {"lr": 0.01, "batch_size": batch_size}, flag="hp", poll_interval=0.05)
    opt = wl.watch_or_edit(torch.optim.SGD(model.parameters(), lr=params["lr"]), flag="optimizer")
    loader = wl.watch_or_edit(train, flag="data", loader_name="train", batch_size=batch_size, shuffle=shuffle)
    loss = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="train_loss")
    return model, params, opt, loader, loss, noisy


def _train_step(model, opt, loss_fn, x, ids, y):
    opt.zero_grad()
    out = model(x)
    losses = loss_fn(out, y, batch_ids=ids)
    losses.mean().backward()
    opt.step()
    return losses


def test_every_sample_and_split_gets_per_sample_losses(wl):
    model, _, opt, loader, loss_fn, _ = _setup(wl, n=300)
    x_val, y_val, _, _ = noisy_digits(n=360)
    val = torch.utils.data.TensorDataset(torch.tensor(x_val[300:]), torch.tensor(y_val[300:]))
    val_loader = wl.watch_or_edit(val, flag="data", loader_name="val", batch_size=16)
    val_loss = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="val_loss")
    for _ in range(2):
        for x, ids, y in loader:
            with wl.guard_training_context:
                out = _train_step(model, opt, loss_fn, x, ids, y)
                assert out.shape == (len(ids),)  # the unreduced output is returned unchanged
        with wl.guard_testing_context:
            for x, ids, y in val_loader:
                val_loss(model(x), y, batch_ids=ids)
    df = wl.dataframe()
    train = df[df.split == "train"]
    val_rows = df[df.split == "val"]
    assert len(train) == 300 and len(val_rows) == 60
    assert train["train_loss"].notna().all()
    assert val_rows["val_loss"].notna().all()
    assert (train["seen_count"] == 2).all()
    assert wl.get_age() == 2 * len(range(0, 300, 32))  # optimizer steps, not forward calls
    exp = wl.get_experiment()
    rows, steps, values, _ = exp.history.arrays("train_loss")
    assert len(rows) == 600 and set(np.unique(steps)) == set(range(wl.get_age()))
    curve = exp.history.curve("train_loss", split="train")
    assert len(curve) == wl.get_age() and all(p.branch == exp.branch for p in curve)
    assert exp.history.curve("val_loss", split="val")


def test_discard_mid_epoch_removes_exactly_that_sample(wl):
    model, _, opt, loader, loss_fn, _ = _setup(wl, n=96, batch_size=8, shuffle=False)
    seen: list[int] = []
    for i, (x, ids, y) in enumerate(loader):
        seen.extend(ids.tolist())
        if i == 1:
            result = wl.discard_samples([50])
            assert result == {"matched": 1, "changed": 1, "sample_ids": ["50"]}
        _train_step(model, opt, loss_fn, x, ids, y)
    assert 50 not in seen
    assert sorted(seen) == [i for i in range(96) if i != 50]
    # restore brings it back from the next batch on
    wl.discard_samples([50], discard=False)
    assert 50 in [int(i) for _, ids, _ in loader for i in ids]


def test_discard_with_worker_prefetch_is_filtered(wl):
    """Batches prefetched by workers are filtered again in the main process."""
    x, _, y, _ = noisy_digits(64)
    ds = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    loader = wl.watch_or_edit(ds, flag="data", loader_name="train", batch_size=8, num_workers=1)
    seen = []
    for i, (_, ids, _) in enumerate(loader):
        seen.extend(ids.tolist())
        if i == 0:
            wl.discard_samples([str(j) for j in range(16, 32)])
    assert not set(range(16, 32)) & set(seen)
    assert len(seen) == 48


def _run_loop(wl, model, opt, loss_fn, loader, stop: threading.Event, errors: list):
    try:
        while not stop.is_set():
            for x, ids, y in loader:
                if stop.is_set():
                    return
                with wl.guard_training_context:
                    _train_step(model, opt, loss_fn, x, ids, y)
    except BaseException as exc:  # surfaced by the test
        errors.append(exc)


def test_pause_blocks_at_step_boundary_and_run_n_steps(wl):
    model, _, opt, loader, loss_fn, _ = _setup(wl, n=128, batch_size=16)
    exp = wl.get_experiment()
    stop, errors = threading.Event(), []
    thread = threading.Thread(target=_run_loop, args=(wl, model, opt, loss_fn, loader, stop, errors), daemon=True)
    thread.start()
    try:
        wait_for(lambda: wl.get_age() >= 3)
        wl.pause()
        wait_for(lambda: exp.control.waiting)
        assert exp.control.state.value == "paused"
        frozen = wl.get_age()
        assert exp.control.waiting and wl.get_age() == frozen  # blocked at the boundary
        wl.resume(steps=5)
        wait_for(lambda: exp.control.state.value == "paused" and exp.control.waiting)
        assert wl.get_age() == frozen + 5
        wl.resume()
        wait_for(lambda: wl.get_age() >= frozen + 12)
        assert exp.control.state.value == "running"
    finally:
        stop.set()
        wl.resume()
        thread.join(10)
    assert not errors


def test_yaml_edit_changes_optimizer_lr_within_a_poll(wl, tmp_path):
    hp_file = tmp_path / "hp.yaml"
    hp_file.write_text(yaml.safe_dump({"lr": 0.01, "batch_size": 16}))
    model, params, opt, loader, loss_fn, _ = _setup(wl, n=128, batch_size=16, hp=str(hp_file))
    stop, errors = threading.Event(), []
    thread = threading.Thread(target=_run_loop, args=(wl, model, opt, loss_fn, loader, stop, errors), daemon=True)
    thread.start()
    try:
        wait_for(lambda: wl.get_age() >= 2)
        hp_file.write_text(yaml.safe_dump({"lr": 0.5, "batch_size": 16}))
        wait_for(lambda: opt.param_groups[0]["lr"] == 0.5, timeout=5)
        assert params["lr"] == 0.5
        # a malformed edit is rejected with a warning and changes nothing
        hp_file.write_text("lr: [unclosed")
        wait_for(lambda: params.last_error is not None, timeout=5)
        assert opt.param_groups[0]["lr"] == 0.5
        # batch size edits from code change the loader live
        wl.get_experiment().set_hyperparameter("batch_size", 8)
        wait_for(lambda: loader.batch_size == 8, timeout=5)
    finally:
        stop.set()
        thread.join(10)
    assert not errors
    assert yaml.safe_load(hp_file.read_text()) == {"lr": 0.5, "batch_size": 8}  # written back


def test_hp_sync_off_reads_file_only_on_demand(wl, tmp_path, monkeypatch):
    monkeypatch.setenv("WL_ENABLE_HP_SYNC", "0")
    hp_file = tmp_path / "hp.yaml"
    hp_file.write_text(yaml.safe_dump({"lr": 0.01}))
    params = wl.watch_or_edit(str(hp_file), flag="hp", poll_interval=0.01)
    exp = wl.get_experiment()
    assert not any(t.name == "weightslab-hp-watch" for t in threading.enumerate())
    hp_file.write_text(yaml.safe_dump({"lr": 0.2}))
    assert exp.hyperparameters()["pending"] == {"lr": 0.2}  # the on-demand read picks it up
    exp.step_boundary()
    assert params["lr"] == 0.2


def test_tags_and_categorical_tags_round_trip(wl):
    x, _, y, _ = noisy_digits(40)
    wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=8)
    wl.tag_samples([1, 2, 3], "suspicious")
    wl.tag_samples(["3"], "quality", value="blurry")
    wl.tag_samples([4], "quality", value="sharp")
    assert wl.tag_samples([1, 2], "suspicious") ["changed"] == 0  # idempotent
    df = wl.dataframe().set_index("sample_id")
    assert df.loc["3", "tags"] == ["suspicious"]
    assert bool(df.loc["1", "tag:suspicious"]) and not bool(df.loc["5", "tag:suspicious"])
    assert df.loc["3", "tag:quality"] == "blurry" and df.loc["4", "tag:quality"] == "sharp"
    assert df.loc["5", "tag:quality"] is None or df.loc["5", "tag:quality"] != df.loc["5", "tag:quality"]  # None or NaN
    wl.untag_samples([1], "suspicious")
    assert not bool(wl.dataframe().set_index("sample_id").loc["1", "tag:suspicious"])


def test_edit_by_query_and_unknown_ids(wl):
    from weightslab.table import UnknownSamples

    x, _, y, _ = noisy_digits(40)
    wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=8)
    before = wl.dataframe()
    with pytest.raises(UnknownSamples, match="999"):
        wl.discard_samples([1, 999])
    assert wl.dataframe().equals(before)  # nothing changed
    result = wl.discard_samples(query="label == 3")
    assert result["matched"] == int((y == 3).sum()) and result["changed"] == result["matched"]
    assert wl.dataframe().query("discarded").label.eq(3).all()  # noqa: S  (test-side pandas only)


def test_bad_input_errors(wl):
    with pytest.raises(ValueError, match="valid flags: .*hyperparameters.*loss.*model"):
        wl.watch_or_edit(object(), flag="modle")
    with pytest.raises(ValueError):
        wl.watch_or_edit(object(), flag="mod")  # no substring matching
    x, _, y, _ = noisy_digits(16)
    wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=8)
    loss = wl.watch_or_edit(lambda v: v, flag="loss", name="l")
    with pytest.raises(ValueError, match="batch_ids has 3 ids but signal 'l' has 2 values"):
        loss(np.array([1.0, 2.0]), batch_ids=[0, 1, 2])
    loss(np.array([1.0, np.nan]), batch_ids=[0, 1])
    df = wl.dataframe().set_index("sample_id")
    assert df.loc["0", "l"] == 1.0 and np.isnan(df.loc["1", "l"])
    with pytest.raises(ValueError, match="batch_size=0"):
        wl.watch_or_edit((x, y), flag="data", loader_name="other", batch_size=0)
    params = wl.watch_or_edit({"lr": 0.1}, flag="hp")
    exp = wl.get_experiment()
    with pytest.raises(ValueError, match="unknown hyperparameter 'momentum'"):
        exp.set_hyperparameter("momentum", 0.9)
    with pytest.raises(ValueError, match="lr='fast': expected a number"):
        exp.set_hyperparameter("lr", "fast")
    assert params["lr"] == 0.1


def test_per_instance_signals_fold_by_aggregation(wl, monkeypatch):
    x, _, y, _ = noisy_digits(8)
    wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=8)
    det = wl.watch_or_edit(lambda v: v, flag="signal", name="box_loss", per_instance=True)
    det(np.array([1.0, 3.0, 5.0]), batch_ids=[0, 0, 1], annotation_ids=["a", "b", "c"])
    df = wl.dataframe().set_index("sample_id")
    assert df.loc["0", "box_loss"] == 2.0 and df.loc["1", "box_loss"] == 5.0
    assert df.loc["0", "_instance_signals"] == {"box_loss": {"a": 1.0, "b": 3.0}}
    # config key instance_aggregation (registered hyperparameters) beats the env default
    wl.watch_or_edit({"instance_aggregation": "max"}, flag="hp")
    det(np.array([1.0, 3.0]), batch_ids=[0, 0], annotation_ids=["a", "b"])
    assert wl.dataframe().set_index("sample_id").loc["0", "box_loss"] == 3.0


@pytest.mark.parametrize(("env", "expected"), [(None, 2.0), ("max", 3.0), ("MEAN", 2.0)])
def test_per_instance_aggregation_from_the_environment(wl, monkeypatch, env, expected):
    """WL_INSTANCE_AGGREGATION (env, no config key registered) decides how instances fold."""
    if env is None:
        monkeypatch.delenv("WL_INSTANCE_AGGREGATION", raising=False)
    else:
        monkeypatch.setenv("WL_INSTANCE_AGGREGATION", env)
    x, _, y, _ = noisy_digits(8)
    wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=8)
    det = wl.watch_or_edit(lambda v: v, flag="signal", name="box_loss", per_instance=True)
    det(np.array([1.0, 3.0, 5.0]), batch_ids=[0, 0, 1], annotation_ids=["a", "b", "c"])
    df = wl.dataframe().set_index("sample_id")
    assert df.loc["0", "box_loss"] == expected and df.loc["1", "box_loss"] == 5.0
    assert df.loc["0", "_instance_signals"] == {"box_loss": {"a": 1.0, "b": 3.0}}  # always kept
    # the per-experiment config key still beats the environment
    wl.watch_or_edit({"instance_aggregation": "mean" if env == "max" else "max"}, flag="hp")
    det(np.array([1.0, 3.0]), batch_ids=[0, 0], annotation_ids=["a", "b"])
    assert wl.dataframe().set_index("sample_id").loc["0", "box_loss"] == (2.0 if env == "max" else 3.0)


def test_derived_signal_sees_subscribed_history(wl):
    x, _, y, _ = noisy_digits(8)
    wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=8)
    loss = wl.watch_or_edit(lambda v: v, flag="loss", name="loss")
    seen = []

    @wl.signal(name="loss_delta", subscribe_to="loss", include_history=True)
    def delta(ctx):
        seen.append({sid: len(ctx.subscribed_history[sid][1]) for sid in ctx.sample_ids})
        return np.array([h[1][-1] - h[1][0] for h in (ctx.subscribed_history[s] for s in ctx.sample_ids)])

    exp = wl.get_experiment()
    loss(np.array([1.0, 2.0]), batch_ids=[0, 1])
    exp.step_end()
    loss(np.array([4.0, 2.5]), batch_ids=[0, 1])
    df = wl.dataframe().set_index("sample_id")  # reads fold queued records in (derived run there)
    assert seen[-1] == {"0": 2, "1": 2}
    assert df.loc["0", "loss_delta"] == 3.0 and df.loc["1", "loss_delta"] == 0.5


def test_exports_have_deterministic_names(wl, tmp_path):
    x, _, y, _ = noisy_digits(8)
    wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=8)
    loss = wl.watch_or_edit(lambda v: v, flag="loss", name="loss")
    loss(np.arange(8, dtype=float), batch_ids=list(range(8)))
    root = wl.get_experiment().root_log_dir
    assert wl.write_dataframe() == root / "exports" / "samples.csv"
    assert wl.write_dataframe(format="json") == root / "exports" / "samples.json"
    assert wl.write_history() == root / "exports" / "history.csv"
    out = wl.write_history(tmp_path / "h", format="parquet")
    assert out == tmp_path / "h" / "history.parquet"
    import pandas as pd

    hist = pd.read_parquet(out)
    assert len(hist) == 8 and set(hist.columns) >= {"signal", "split", "sample_id", "step", "value", "branch"}
    with pytest.raises(ValueError, match="format='xlsx'"):
        wl.write_dataframe(format="xlsx")


def test_guards_never_swallow_exceptions(wl):
    with pytest.raises(RuntimeError, match="boom"):
        with wl.guard_training_context:
            raise RuntimeError("boom")
    assert wl.weightslab_rlock.holder() is None


def test_pause_inside_a_guard_around_the_whole_epoch_lets_edits_in(wl):
    """A loop wrapped in one guard holds the main lock at the loader's boundary: while paused
    there the lock is given up, so an edit from another thread (like gRPC) gets through."""
    model, _, opt, loader, loss_fn, _ = _setup(wl, n=128, batch_size=16)
    exp = wl.get_experiment()
    stop, errors = threading.Event(), []

    def loop():
        try:
            with wl.guard_training_context:
                while not stop.is_set():
                    for x, ids, y in loader:
                        if stop.is_set():
                            return
                        _train_step(model, opt, loss_fn, x, ids, y)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        wait_for(lambda: wl.get_age() >= 2)
        wl.pause()
        wait_for(lambda: exp.control.waiting)
        assert exp.edit("tag", ids=["3"], tag="seen", lock_timeout=2.0)["changed"] == 1
        assert exp.lock.holder() is None  # given up while paused
        wl.resume()
        wait_for(lambda: exp.lock.holder() is not None and exp.lock.holder().thread_name == thread.name)
    finally:
        stop.set()
        wl.resume()
        thread.join(10)
    assert not errors


# -- survivors of the mutation smoke test (data.py) ------------------------------------------
def test_batches_are_refilled_around_discarded_samples_and_len_counts_them(wl):
    loader = wl.watch_or_edit((np.arange(16.0), np.arange(16) % 2), flag="data", loader_name="train",
                              batch_size=4)
    assert len(loader) == 4
    wl.discard_samples([1, 6])
    batches = [ids.tolist() for _, ids, _ in loader]
    assert batches == [[0, 2, 3, 4], [5, 7, 8, 9], [10, 11, 12, 13], [14, 15]]
    assert len(loader) == 4  # 14 active samples: ceil(14 / 4)
    loader.drop_last = True
    assert len(loader) == 3 and [len(ids) for _, ids, _ in loader] == [4, 4, 4]


def test_content_hash_ids_follow_the_input_and_duplicates_get_unique_ids(wl):
    x = np.arange(24.0).reshape(6, 4)
    x[5] = x[2]  # the same input twice
    y = np.arange(6)
    data = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    flipped = torch.utils.data.TensorDataset(torch.tensor(x[::-1].copy()), torch.tensor(y[::-1].copy()))
    a = wl.watch_or_edit(data, flag="data", loader_name="a", compute_hash=True)
    b = wl.watch_or_edit(flipped, flag="data", loader_name="b", compute_hash=True)
    ids_a = list(a.ids)
    assert len(set(ids_a)) == 6 and ids_a[5] == f"{ids_a[2]}-1"
    assert all("-" not in i for i in ids_a[:5])  # distinct inputs: the plain content hash
    assert [list(b.ids)[5 - i] for i in (0, 1, 3, 4)] == [ids_a[i] for i in (0, 1, 3, 4)]  # same input, same id


def test_integer_own_ids_come_back_as_a_tensor(wl):
    class Own(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return torch.zeros(2), 100 + 3 * i, i % 2

    loader = wl.watch_or_edit(Own(), flag="data", loader_name="train", batch_size=4, ids_in_items=True)
    _, ids, y = next(iter(loader))
    assert isinstance(ids, torch.Tensor) and ids.tolist() == [100, 103, 106, 109]


def test_index_of_a_numbered_loader(wl):
    loader = wl.watch_or_edit((np.arange(6.0), np.arange(6) % 2), flag="data", loader_name="train", batch_size=2)
    assert [loader.index_of(str(i)) for i in range(6)] == list(range(6))
    for unknown in ("6", "99", "x"):
        with pytest.raises(ValueError, match=f"sample_id='{unknown}' is not in split 'train'"):
            loader.index_of(unknown)
