"""The established WeightsLab SDK (../shared/spec/sdk-compat.md): every name and call form works.

One end-to-end test runs ``examples/established_sdk_script.py`` unmodified on digits; the
others cover each function, including bad input (clear errors, table unchanged).
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from core_testutil import wait_for

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "established_sdk_script.py"

ESTABLISHED_NAMES = [
    "watch_or_edit", "serve", "start_training", "keep_serving", "signal", "compute_signals", "save_signals",
    "save_instance_signals", "save_group_signals", "tag_samples", "register_categorical_tag",
    "set_categorical_tag", "discard_samples", "get_samples_by_tag", "get_discarded_samples", "clear_all",
    "eval_fn", "run_pending_evaluation", "trigger_pending_evaluation_async", "query_signal_history",
    "query_sample_history", "query_instance_history", "write_history", "write_dataframe",
    "get_current_experiment_hash", "guard_training_context", "guard_testing_context", "SignalContext",
    "seed_everything", "setup_logging", "set_log_directory",
]


def _example():
    spec = importlib.util.spec_from_file_location("established_sdk_script", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(wl):
    df = wl.dataframe()
    return df.sort_values(["split", "sample_id"]).reset_index(drop=True)


def test_every_established_name_is_exported_lazily(wl):
    import weightslab

    for name in ESTABLISHED_NAMES:
        assert name in dir(weightslab), name
        assert getattr(weightslab, name) is not None


def test_the_established_script_runs_unmodified_to_the_end(wl, tmp_path):
    torch.set_num_threads(1)
    example = _example()
    result = example.main(tmp_path / "run", steps=120, eval_every=40)
    root = tmp_path / "run" / "logs"
    assert wl.get_experiment().root_log_dir == root  # set_log_directory
    df = wl.dataframe()
    train = df[df.split == "train_loader"]
    test = df[df.split == "test_loader"]
    # The dataset's own ids are used: test ids start at 100000, no second id column.
    assert len(train) == 1400 and len(test) == 397
    assert sorted(test.sample_id.astype(int))[0] == 100_000
    assert train["train-loss-CE"].notna().sum() > 1000  # 120 steps x 64 covers most samples
    assert test["test-loss-CE"].notna().all() and test["test-confidence"].notna().all()
    assert set(test.prediction.dropna().astype(int)) <= set(range(10))
    # The metric object kept working and its compute() became a curve of 3 points.
    assert len(result["accuracies"]) == 3 and result["accuracies"][-1] > 0.5
    curve = wl.get_experiment().history.curve("test-accuracy")
    assert [round(p.value, 6) for p in curve] == [round(a, 6) for a in result["accuracies"]]
    assert result["model"].get_age() == wl.get_age() == 120
    # Exports landed under the root log dir.
    assert (root / "exports" / "history.csv").stat().st_size > 0
    assert (root / "exports" / "samples.csv").stat().st_size > 0
    # Edits with the established forms reach the table and the loader.
    noisy = [str(i) for i in result["noisy_ids"][:5]]
    wl.tag_samples(noisy, "review", mode="add")
    wl.discard_samples(noisy[:2])
    assert wl.get_samples_by_tag("review", origin="train_loader") == sorted(noisy, key=int)
    assert wl.get_discarded_samples(origin="train_loader") == sorted(noisy[:2], key=int)
    loader = wl.get_experiment().loaders["train_loader"]
    seen = set()
    for _ in range(len(loader)):
        _, ids, _ = next(loader)
        seen.update(ids.tolist())
    assert not {int(i) for i in noisy[:2]} & seen
    hist = wl.query_signal_history("train-loss-CE")
    assert hist and all(h[3] == wl.get_current_experiment_hash() for h in hist)


def test_watch_or_edit_accepts_obj_name_and_device_and_the_model_gets_get_age(wl):
    net = torch.nn.Linear(4, 2)
    model = wl.watch_or_edit(net, "classifier", flag="model", device="cpu")
    assert wl.get_experiment().models["classifier"] is model and model.get_age() == 0
    opt = wl.watch_or_edit(torch.optim.SGD(model.parameters(), lr=0.1), flag="optimizer")
    model(torch.zeros(1, 4)).sum().backward()
    opt.step()
    assert model.get_age() == 1
    with pytest.raises(ValueError, match="valid flags"):
        wl.watch_or_edit(net, "x")  # flag missing


def test_stateful_metric_keeps_its_interface_and_logs_compute(wl):
    class Mean:
        def __init__(self):
            self.values = []

        def update(self, v):
            self.values.append(float(v))

        def compute(self):
            return {"mean": float(np.mean(self.values)), "n": len(self.values)}

        def reset(self):
            self.values = []

    metric = wl.watch_or_edit(Mean(), flag="metric", signal_name="m", log=True)
    metric.update(1.0)
    metric.update(3.0)
    assert metric.compute() == {"mean": 2.0, "n": 2}
    metric.reset()
    assert metric.values == []
    history = wl.get_experiment().history
    assert [p.value for p in history.curve("m/mean")] == [2.0] and [p.value for p in history.curve("m/n")] == [2.0]
    silent = wl.watch_or_edit(Mean(), flag="metric", signal_name="quiet", log=False)
    silent.update(1.0)
    silent.compute()
    assert history.curve("quiet/mean") == []


class _WithIds(torch.utils.data.Dataset):
    def __init__(self, n=20, id_of=lambda i: f"s{i}"):
        self.n, self.id_of = n, id_of

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.full((2,), float(i)), self.id_of(i), i % 3


def test_dataset_with_own_ids_yields_them_and_never_adds_a_second_id(wl, caplog):
    with caplog.at_level(logging.INFO, logger="weightslab.data"):
        loader = wl.watch_or_edit(_WithIds(), flag="data", loader_name="train", batch_size=5)
    assert "ids_in_items=False" in caplog.text  # the decision is logged with the override
    x, ids, y = next(iter(loader))
    assert ids == ["s0", "s1", "s2", "s3", "s4"] and y.tolist() == [0, 1, 2, 0, 1] and x.shape == (5, 2)
    labels = _table(wl).set_index("sample_id").label
    assert labels[["s0", "s1", "s2", "s3"]].tolist() == [0, 1, 2, 0]  # labels read from the items
    wl.discard_samples(["s1"])
    assert "s1" not in [i for _, ids, _ in loader for i in ids]


def test_integer_own_ids_and_the_explicit_keyword(wl):
    ds = _WithIds(n=16, id_of=lambda i: 1000 + 7 * i)
    loader = wl.watch_or_edit(ds, flag="data", loader_name="train", batch_size=4)
    _, ids, _ = next(iter(loader))
    assert ids.tolist() == [1000, 1007, 1014, 1021]
    # (input, label, weight): the second part repeats, so it is a label, not an id.
    class Weighted(torch.utils.data.Dataset):
        def __len__(self):
            return 16

        def __getitem__(self, i):
            return torch.zeros(2), i % 4, 0.5

    plain = wl.watch_or_edit(Weighted(), flag="data", loader_name="val", batch_size=4)
    x, ids, y, w = next(iter(plain))
    assert ids.tolist() == [0, 1, 2, 3] and y.tolist() == [0, 1, 2, 3] and w.tolist() == [0.5] * 4
    forced = wl.watch_or_edit(ds, flag="data", loader_name="other", batch_size=4, ids_in_items=False)
    _, ids, y, extra = next(iter(forced))
    assert ids.tolist() == [0, 1, 2, 3] and y.tolist() == [1000, 1007, 1014, 1021]
    with pytest.raises(ValueError, match="own sample ids are not unique"):
        wl.watch_or_edit(Weighted(), flag="data", loader_name="bad", ids_in_items=True)


def test_dict_items_with_an_id_key(wl):
    class Dicts(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return {"x": torch.tensor([float(i)]), "y": i % 2, "sample_id": f"d{i}", "weight": 1.0}

    loader = wl.watch_or_edit(Dicts(), flag="data", loader_name="train", batch_size=4)
    x, ids, y, extra = next(iter(loader))
    assert ids == ["d0", "d1", "d2", "d3"] and y.tolist() == [0, 1, 0, 1] and set(extra) == {"weight"}


def test_next_on_a_watched_loader_never_runs_dry_and_for_ends(wl):
    loader = wl.watch_or_edit((np.arange(10.0), np.arange(10) % 2), flag="data", loader_name="train", batch_size=4)
    assert sum(1 for _ in loader) == 3  # a for loop is one epoch
    got = [next(loader)[1].tolist() for _ in range(7)]
    assert got[:3] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and got[3] == [0, 1, 2, 3]
    loader.batch_size = 5
    wl.discard_samples(list(range(10)))
    with pytest.raises(RuntimeError, match="no active sample"):
        for _ in range(5):
            next(loader)


def test_tag_modes_and_bad_values_leave_the_table_unchanged(wl):
    wl.watch_or_edit((np.arange(6.0), np.arange(6) % 2), flag="data", loader_name="train")
    wl.tag_samples([0, 1, 2], "a")
    wl.tag_samples([1, 2], "b", mode="add")
    wl.tag_samples([2], "a", mode="remove")
    assert wl.get_samples_by_tag("a") == ["0", "1"] and wl.get_samples_by_tag("b") == ["1", "2"]
    wl.tag_samples([1], "c", mode="set")  # sample 1 keeps only "c"
    assert wl.get_samples_by_tag("a") == ["0"] and wl.get_samples_by_tag("b") == ["2"]
    assert wl.get_samples_by_tag("c") == ["1"]
    before = _table(wl)
    with pytest.raises(ValueError, match="mode='replace'.*add, remove, set"):
        wl.tag_samples([0], "a", mode="replace")
    with pytest.raises(KeyError, match="unknown sample ids"):
        wl.tag_samples([0, 99], "a", mode="set")
    with pytest.raises(ValueError, match="origin='nope'"):
        wl.get_samples_by_tag("a", origin="nope")
    with pytest.raises(ValueError, match="limit"):
        wl.get_samples_by_tag("a", limit=-1)
    after = _table(wl)
    assert before.drop(columns=["tags"]).equals(after.drop(columns=["tags"]))
    assert wl.get_samples_by_tag("never-used") == []
    assert wl.get_samples_by_tag("a", limit=0) == []


def test_discarded_false_restores_and_bad_flag_is_refused(wl):
    wl.watch_or_edit((np.arange(6.0), np.arange(6) % 2), flag="data", loader_name="train")
    wl.discard_samples([1, 2, 3])
    wl.discard_samples([2], discarded=False)
    assert wl.get_discarded_samples() == ["1", "3"] and wl.get_discarded_samples(limit=1) == ["1"]
    with pytest.raises(ValueError, match="discarded='no'"):
        wl.discard_samples([1], discarded="no")
    assert wl.get_discarded_samples() == ["1", "3"]


def test_categorical_tags(wl):
    wl.watch_or_edit((np.arange(6.0), np.arange(6) % 2), flag="data", loader_name="train")
    assert wl.register_categorical_tag("quality", ["sharp", "blurry"]) == ["sharp", "blurry"]
    wl.set_categorical_tag([0, 1], "quality", "blurry")
    wl.set_categorical_tag([2], "quality", "noisy")  # a new value is added to the set
    assert wl.get_experiment().categorical_tags["quality"] == ["sharp", "blurry", "noisy"]
    assert wl.get_samples_by_tag("quality=blurry") == ["0", "1"]
    wl.set_categorical_tag([0], "quality", None)
    assert wl.get_samples_by_tag("quality=blurry") == ["1"]
    assert wl.register_categorical_tag("quality", ["ok"], replace=True) == ["ok"]
    with pytest.raises(ValueError, match="categories"):
        wl.register_categorical_tag("quality", "sharp")
    with pytest.raises(ValueError, match="value=''"):
        wl.set_categorical_tag([1], "quality", "")


def test_instance_and_group_signals_fold_into_rows_and_history(wl):
    wl.watch_or_edit((np.arange(4.0), np.arange(4) % 2), flag="data", loader_name="train")
    # Sample "0" has two instances, sample "2" one.
    wl.save_instance_signals({"iou": np.array([0.2, 0.6, 0.9])}, batch_ids=["0", "2"], batch_idx=[0, 0, 1],
                             origin="train")
    df = _table(wl).set_index("sample_id")
    assert df.loc["0", "iou"] == pytest.approx(0.4) and df.loc["2", "iou"] == pytest.approx(0.9)
    assert df.loc["0", "_instance_signals"] == {"iou": {"0": 0.2, "1": 0.6}}
    assert wl.query_instance_history("0", 1, "iou") == [("iou", 0, 0.6, wl.get_current_experiment_hash())]
    with pytest.raises(ValueError, match="batch_idx"):
        wl.save_instance_signals({"iou": np.array([0.1])}, batch_ids=["0"], batch_idx=[3])
    wl.save_group_signals({"pair_loss": np.array([1.0, 3.0])}, group_ids=[("0", "1"), ("1", "3")])
    df = _table(wl).set_index("sample_id")
    assert df.loc["1", "pair_loss"] == pytest.approx(2.0) and df.loc["3", "pair_loss"] == pytest.approx(3.0)
    assert set(df.loc["1", "_instance_signals"]["pair_loss"]) == {"group:0+1", "group:1+3"}
    curve = wl.get_experiment().history.curve("pair_loss")
    assert len(curve) == 1
    with pytest.raises(ValueError, match="one per group"):
        wl.save_group_signals({"pair_loss": np.array([1.0])}, group_ids=[("0", "1"), ("2", "3")])
    with pytest.raises(KeyError, match="unknown sample ids"):
        wl.save_group_signals({"pair_loss": np.array([1.0])}, group_ids=[("0", "77")])


def test_history_queries_per_branch(wl):
    wl.watch_or_edit((np.arange(4.0), np.arange(4) % 2), flag="data", loader_name="train")
    first = wl.get_current_experiment_hash()
    wl.save_signals({"s": np.array([1.0, 2.0])}, batch_ids=["0", "1"], step=5)
    rows = wl.query_signal_history("s")
    assert sorted(rows) == [("0", 5, 1.0, first), ("1", 5, 2.0, first)]
    assert wl.query_sample_history(1) == [("s", 5, 2.0, first)]
    assert wl.query_signal_history("s", exp_hash="feedbeef") == []
    with pytest.raises(ValueError, match="signal_name='nope'"):
        wl.query_signal_history("nope")
    with pytest.raises(ValueError, match="sample_id=42"):
        wl.query_sample_history(42)


def test_save_signals_established_form(wl):
    wl.watch_or_edit((np.arange(4.0), np.arange(4) % 2), flag="data", loader_name="train")
    logits = torch.tensor([[0.1, 2.0], [3.0, 0.0]])
    wl.save_signals(preds_raw=logits, targets=torch.tensor([1, 1]), batch_ids=["0", "1"],
                    signals={"conf": torch.tensor([0.9, 0.8])})
    df = _table(wl).set_index("sample_id")
    assert df.loc["0", "prediction"] == 1 and df.loc["1", "prediction"] == 0
    assert wl.get_experiment().history.curve("conf") == []  # log=False by default, as established
    with pytest.raises(ValueError, match="one value per id"):
        wl.save_signals({"conf": torch.tensor([0.9])}, batch_ids=["0", "1"])


def test_static_signals_and_compute_signals(wl):
    loader = wl.watch_or_edit(_WithIds(n=6), flag="data", loader_name="train", batch_size=3)

    @wl.signal("brightness")
    def brightness(x):
        return float(x.mean())

    @wl.signal(name="is_even_label")
    def even(x, label):
        return float(label % 2 == 0)

    assert wl.compute_signals(loader) == {"brightness": 6, "is_even_label": 6}
    df = _table(wl).set_index("sample_id")
    assert df.loc["s4", "brightness"] == 4.0 and df.loc["s1", "is_even_label"] == 0.0
    with pytest.raises(ValueError, match="unknown nope"):
        wl.compute_signals(loader, signals=["nope"])


def test_start_training_keep_serving_and_clear_all(wl):
    wl.watch_or_edit((np.arange(4.0), np.arange(4) % 2), flag="data", loader_name="train")
    wl.pause()
    assert wl.start_training(timeout=3) is True
    assert wl.get_experiment().control.state.value == "running"
    with pytest.raises(ValueError, match="timeout"):
        wl.start_training(timeout=-1)
    wl.keep_serving(timeout=0, release_gpu=True)
    old = wl.get_experiment()
    wl.clear_all()
    assert wl.get_experiment() is not old and wl.get_experiment().table.n == 0


def test_run_pending_evaluation_waits_for_a_requested_pass(wl):
    model = wl.watch_or_edit(torch.nn.Sequential(torch.nn.Linear(1, 2)), flag="model")
    wl.watch_or_edit((np.arange(8.0, dtype=np.float32)[:, None], np.arange(8) % 2), flag="data",
                     loader_name="val", is_training=False, batch_size=4)
    assert wl.run_pending_evaluation() is False and wl.trigger_pending_evaluation_async() is False
    with wl.guard_training_context:  # the pass needs the main lock this thread holds: it cannot end first
        started = wl.get_experiment().evaluation.start("val")
        assert started["state"] in ("running", "done")
        ran = wl.run_pending_evaluation(model=model, timeout=20)
    assert ran is True
    status = wl.get_experiment().evaluation.status()
    assert status["state"] == "done" and (ran or started["state"] == "done")
    with pytest.raises(ValueError, match="not watched"):
        wl.run_pending_evaluation(loaders=[object()])


def test_utilities(wl, tmp_path):
    assert wl.seed_everything(7) == 7
    a = torch.rand(2)
    wl.seed_everything(7)
    assert torch.equal(a, torch.rand(2))
    with pytest.raises(ValueError, match="seed"):
        wl.seed_everything(-1)
    target = wl.set_log_directory(tmp_path / "elsewhere")
    assert target == tmp_path / "elsewhere"
    wl.setup_logging("debug", log_to_file=True)
    wl.watch_or_edit((np.arange(2.0), np.arange(2)), flag="data", loader_name="train")  # starts the experiment
    assert logging.getLogger("weightslab").level == logging.DEBUG
    wait_for(lambda: (target / "logs" / "weightslab.log").exists())
    with pytest.raises(ValueError, match="level='loud'"):
        wl.setup_logging("loud")


def test_exports_with_the_established_keywords(wl, tmp_path):
    wl.watch_or_edit((np.arange(4.0), np.arange(4) % 2), flag="data", loader_name="train")
    wl.save_signals({"s": np.array([1.0, 2.0])}, batch_ids=["0", "1"], log=True)
    out = wl.write_dataframe(tmp_path / "one.json", columns=["label"], sample_id=1)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [{"split": "train", "sample_id": "1", "label": 1}]
    curve = wl.write_history(tmp_path / "curve.csv", type_of_history="curve", graph_name="s")
    assert curve.read_text().splitlines()[0] == "signal,split,step,value,branch"
    pq = wl.write_dataframe(tmp_path / "t.parquet")
    assert pq.read_bytes()[:4] == b"PAR1"  # the suffix picks the format
    with pytest.raises(ValueError, match="names a .parquet file but format='csv'"):
        wl.write_dataframe(tmp_path / "t.parquet", format="csv")
    with pytest.raises(ValueError, match="signals: unknown nosuch"):
        wl.write_history(signals=["nosuch"])
