"""Issue 20 (a new user's first hour), core items: bad hyperparameter values never kill the run (1),
``@wl.eval_fn`` signatures checked at registration (5), numbers in every notation (6), the root log
dir reuse rule (9), exports (13)."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from core_testutil import noisy_digits, wait_for
from weightslab.experiment import Experiment
from weightslab.hyperparams import HyperParameterError, HyperParameters, load_yaml, parse_value
from weightslab.store import StoreLockedError

torch = pytest.importorskip("torch")


# -- item 1: validated when the request arrives -------------------------------------------------
@pytest.mark.parametrize(("key", "value", "accepted"), [
    ("batch_size", 0, "an integer >= 1"), ("batch_size", "-1", "an integer >= 1"),
    ("batch_size", "0", "an integer >= 1"), ("lr", -1, "a finite number > 0"), ("lr", "0", "a finite number > 0"),
    ("lr", "inf", "a finite number > 0"), ("optimizer.lr", "-1e-3", "a finite number > 0"),
    ("epochs", -2, "an integer >= 0"), ("momentum", 1.5, "a number in [0, 1]"),
])
def test_out_of_range_values_are_refused_naming_key_value_and_what_is_accepted(key: str, value: object,
                                                                                accepted: str) -> None:
    hp = HyperParameters({"batch_size": 32, "lr": 0.1, "optimizer": {"lr": 0.1}, "epochs": 3, "momentum": 0.9})
    with pytest.raises(HyperParameterError) as err:
        hp.request(key, value)
    message = str(err.value)
    assert message.startswith(f"{key}=") and accepted in message and "current" in message
    assert hp.pending() == {}


def test_values_inside_the_rules_are_queued() -> None:
    hp = HyperParameters({"batch_size": 32, "lr": 0.1, "epochs": 3, "dropout": 0.1})
    assert hp.request("batch_size", "1") == 1 and hp.request("lr", "1e-3") == 0.001
    assert hp.request("epochs", 0) == 0 and hp.request("dropout", ".5") == 0.5
    assert hp.request_many({"lr": 2.5, "batch_size": 64}) == {"lr": 2.5, "batch_size": 64}
    with pytest.raises(HyperParameterError, match="batch_size=0"):  # all or nothing
        hp.request_many({"lr": 0.2, "batch_size": 0})
    assert hp.pending()["lr"] == 2.5
    own = HyperParameters({"batch_size": "auto", "lr": [0.1, 0.01]})  # not numbers: the rules do not apply
    assert own.request("batch_size", "none") == "none" and own.request("lr", "[0.2, 0.02]") == [0.2, 0.02]


class BoundedSGD(torch.optim.SGD):  # type: ignore[name-defined]  # torch comes from importorskip
    """An optimizer with a constraint of its own: lr at most 1."""

    def __init__(self, params, lr: float = 0.1, **kw):  # noqa: ANN001, ANN003
        if lr > 1:
            raise ValueError(f"lr={lr} above 1 diverges for this optimizer")
        super().__init__(params, lr=lr, **kw)


def _environ(folder: Path) -> dict[str, str]:
    """No .env of the repository or the developer: an empty one."""
    env_file = folder / "empty.env"
    env_file.write_text("")
    return {"WEIGHTSLAB_LOG_LEVEL": "INFO", "WEIGHTSLAB_ENV_FILE": str(env_file)}


def _experiment(tmp_path: Path) -> Experiment:
    exp = Experiment(kwargs={"root_log_dir": tmp_path / "root"}, environ=_environ(tmp_path))
    exp.start()
    return exp


def test_the_optimizer_and_loader_constraints_are_checked_at_request_time(tmp_path: Path) -> None:
    from weightslab.data import WatchedLoader

    exp = _experiment(tmp_path)
    try:
        model = torch.nn.Linear(4, 2)
        exp.optimizers["opt"] = BoundedSGD(model.parameters(), lr=0.1, momentum=0.9)
        x = np.zeros((10, 4), dtype=np.float32)
        exp.loaders["train"] = WatchedLoader(exp, (x, np.zeros(10, dtype=np.int64)), loader_name="train",
                                             batch_size=4, drop_last=True)
        hp = HyperParameters({"lr": 0.1, "batch_size": 4})
        exp.register_hyperparameters(hp)
        with pytest.raises(HyperParameterError, match=r"lr=2.0: refused by optimizer 'opt' \(BoundedSGD: lr=2"):
            exp.set_hyperparameter("lr", "2")
        assert exp.set_hyperparameter("lr", "0.5") == 0.5  # the probe keeps the other options (momentum)
        with pytest.raises(HyperParameterError, match=r"batch_size=11: loader 'train' drops its last incomplete "
                                                      r"batch and has 10 active samples.*from 1 to 10"):
            exp.set_hyperparameter("batch_size", 11)
        assert exp.set_hyperparameter("batch_size", 10) == 10
    finally:
        exp.shutdown()


def test_an_edit_that_fails_when_applied_is_rolled_back_and_reported(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    hp = HyperParameters({"batch_size": 32, "lr": 0.1}, yaml_path=tmp_path / "hp.yaml")
    used: list[tuple[str, object]] = []

    def applier(key: str, value: object) -> None:
        if key == "batch_size" and value == 7:
            raise RuntimeError("7 does not divide the number of devices")
        used.append((key, value))

    hp.add_applier(applier)
    hp.request("batch_size", 7)
    hp.request("lr", 0.2)
    with caplog.at_level(logging.WARNING, logger="weightslab.hyperparameters"):
        assert hp.apply_pending() == {"lr": 0.2}  # the good edit still applies
    assert hp["batch_size"] == 32 and hp["lr"] == 0.2
    assert used == [("batch_size", 32), ("lr", 0.2)]  # the kept value re-applied (undo a partial apply)
    assert hp.rejected() == {"batch_size": {"value": 7, "reason": "RuntimeError: 7 does not divide the number "
                                                                  "of devices", "kept": 32}}
    assert "batch_size=7 rejected when applied" in (hp.last_error or "") and "kept 32" in (hp.last_error or "")
    assert "batch_size=7 rejected when applied" in caplog.text
    assert yaml.safe_load((tmp_path / "hp.yaml").read_text()) == {"batch_size": 32, "lr": 0.2}
    hp.request("batch_size", 16)
    hp.apply_pending()
    assert hp.rejected() == {} and hp["batch_size"] == 16  # a later good value clears the entry


def test_the_file_poller_does_not_hide_a_rejection(tmp_path: Path) -> None:
    """The kept values are written to the YAML; the poller reading that file (its mtime not yet
    noted, as when it runs between the write and the stat) must keep the rejection visible."""
    path = tmp_path / "hp.yaml"
    hp = HyperParameters({"batch_size": 32}, yaml_path=path)

    def applier(key: str, value: object) -> None:
        if value == 24:
            raise RuntimeError("24 does not fit")

    hp.add_applier(applier)
    hp.request("batch_size", 24)
    hp.apply_pending()
    hp._mtime = None  # the poller's view: a file it has not read yet
    assert hp.check_file() == {}
    assert (hp.last_error or "").startswith("batch_size=24 rejected when applied")
    path.write_text("batch_size: [")  # a broken file is reported, and a fixed one clears that report
    hp._mtime = None
    hp.check_file()
    assert "not valid YAML" in (hp.last_error or "")
    path.write_text("batch_size: 32\n")
    hp._mtime = None
    hp.check_file()
    assert hp.last_error is None


def test_the_listing_operation_reports_rejected_edits(tmp_path: Path) -> None:
    from weightslab.operations import hyperparameters

    exp = _experiment(tmp_path)
    try:
        hp = HyperParameters({"batch_size": 32, "api_key": "sk-secret-value-1234"})
        exp.register_hyperparameters(hp)

        def refuse(key: str, value: object) -> None:
            raise ValueError(f"no {value}")

        hp.add_applier(refuse)
        exp.set_hyperparameter("api_key", "sk-other-value-5678")
        exp.step_boundary()
        listed = hyperparameters.get_hyperparameters(exp)
        (entry,) = listed.rejected
        assert entry.key == "api_key" and str(entry.value).startswith("fingerprint ")
        assert "sk-other-value-5678" not in entry.reason and "sk-other-value-5678" not in listed.last_error
        assert listed.applied()["api_key"] == listed.rejected_edits()["api_key"]["kept"]
    finally:
        exp.shutdown()


def test_a_real_training_loop_survives_every_bad_edit(wl) -> None:  # noqa: ANN001
    torch.set_num_threads(1)
    x, _, y, _ = noisy_digits(128)
    model = wl.watch_or_edit(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), flag="model")
    params = wl.watch_or_edit({"lr": 0.05, "batch_size": 16}, flag="hp", poll_interval=0.05)
    opt = wl.watch_or_edit(torch.optim.SGD(model.parameters(), lr=params["lr"]), flag="optimizer")
    loader = wl.watch_or_edit(torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)), flag="data",
                              loader_name="train", batch_size=16, shuffle=True)
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="loss")
    params.add_applier(lambda key, value: (_ for _ in ()).throw(RuntimeError("no 48 here"))
                       if (key, value) == ("batch_size", 48) else None)
    stop, errors = threading.Event(), []

    def train() -> None:
        try:
            while not stop.is_set():
                for xb, ids, yb in loader:
                    with wl.guard_training_context:
                        opt.zero_grad()
                        loss_fn(model(xb), yb, batch_ids=ids).mean().backward()
                        opt.step()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=train, daemon=True)
    thread.start()
    exp = wl.get_experiment()
    try:
        wait_for(lambda: exp.step >= 2)
        for bad in (0, -1, "0", "-1", 2.5, "x"):
            with pytest.raises(HyperParameterError, match="batch_size="):
                exp.set_hyperparameter("batch_size", bad)
        with pytest.raises(HyperParameterError, match="lr="):
            exp.set_hyperparameter("lr", "-1e-3")
        exp.set_hyperparameter("batch_size", 48)  # passes validation, refused when applied
        wait_for(lambda: "batch_size" in params.rejected())
        step = exp.step
        wait_for(lambda: exp.step >= step + 3)  # still training, with the old value
        assert loader.batch_size == 16 and params["batch_size"] == 16
        exp.set_hyperparameter("lr", "1e-3")
        wait_for(lambda: opt.param_groups[0]["lr"] == 0.001)
    finally:
        stop.set()
        thread.join(10)
    assert not errors


# -- item 6: numbers in every common notation, wherever values are parsed from text ------------
@pytest.mark.parametrize(("text", "expected"), [
    ("1e-3", 0.001), ("1E3", 1000.0), (".5", 0.5), ("5.", 5.0), ("-2", -2), ("1_000", 1000), ("+3", 3),
    ("1.5e+2", 150.0), ("1_000.5", 1000.5), ("inf", float("inf")), ("-.inf", float("-inf")), ("0x10", 16),
])
def test_text_values_are_numbers_in_every_notation(text: str, expected: float) -> None:
    value = parse_value("x", text)
    assert value == expected and type(value) is type(expected)
    if text != "inf":  # plain `inf` is text in YAML (its infinity is .inf); alone it is a number
        assert parse_value("x", f"[{text}]") == [expected]  # inside a YAML list too
        assert load_yaml(f"x: {text}")["x"] == expected


def test_yaml_files_read_1e_3_as_a_number_and_quoted_text_stays_text(wl, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "hp.yaml"
    path.write_text('lr: 1e-3\nwarmup: 5.\nname: "1e-3"\nsteps: 1_000\n')
    params = wl.watch_or_edit(str(path), flag="hp", poll_interval=0.05)
    assert params.as_dict() == {"lr": 0.001, "warmup": 5.0, "name": "1e-3", "steps": 1000}
    model = torch.nn.Linear(2, 2)
    opt = wl.watch_or_edit(torch.optim.SGD(model.parameters(), lr=0.5), flag="optimizer")
    assert opt.param_groups[0]["lr"] == 0.001  # a number, so the watched optimizer takes it
    path.write_text('lr: 2E-3\nwarmup: 5.\nname: "1e-3"\nsteps: 1_000\n')
    wait_for(lambda: params.pending().get("lr") == 0.002)
    assert params.last_error is None


# -- item 5: @wl.eval_fn signatures -----------------------------------------------------------
def test_eval_fn_accepts_the_documented_forms(wl) -> None:  # noqa: ANN001
    @wl.eval_fn
    def with_ctx(ctx):  # noqa: ANN001, ANN202
        return None

    @wl.eval_fn(name="classic")
    def classic(loader, model, extra=1):  # noqa: ANN001, ANN202
        return None

    @wl.eval_fn
    def varargs(*args):  # noqa: ANN002, ANN202
        return None

    assert {"with_ctx", "classic", "varargs"} <= set(wl.get_experiment().eval_fns)


@pytest.mark.parametrize(("source", "problem"), [
    ("def bad(): pass", "no parameter"),
    ("def bad(a, b, c): pass", "3 required parameters"),
    ("def bad(model): pass", "looks like the model"),
    ("def bad(model, loader): pass", "wrong order (model, loader)"),
    ("def bad(ctx, *, threshold): pass", "keyword-only parameter(s) without a default (threshold)"),
])
def test_eval_fn_with_a_wrong_signature_is_refused_naming_the_forms(wl, source: str, problem: str) -> None:  # noqa: ANN001
    namespace: dict[str, object] = {}
    exec(textwrap.dedent(source), namespace)  # noqa: S102 - a test's own literal function definitions
    with pytest.raises(TypeError) as err:
        wl.eval_fn(namespace["bad"])
    message = str(err.value)
    assert message.startswith("@wl.eval_fn bad(") and problem in message
    assert "fn(ctx)" in message and "fn(batches, model)" in message and "ctx.batches" in message
    assert "bad" not in wl.get_experiment().eval_fns
    with pytest.raises(TypeError, match="Accepted forms"):
        wl.run_pending_evaluation(eval_fn=namespace["bad"])


README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_block(marker: str) -> str:
    import re

    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S) if marker in b]
    assert len(blocks) == 1, f"the core README's block with {marker!r} is gone"
    return blocks[0]


def test_the_readme_eval_fn_example_runs_a_real_pass(wl) -> None:  # noqa: ANN001
    from weightslab.evaluation import EvaluationController

    torch.set_num_threads(1)
    x, y, _, _ = noisy_digits(96)
    model = wl.watch_or_edit(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), flag="model")
    wl.watch_or_edit(torch.utils.data.TensorDataset(torch.tensor(x[:64]), torch.tensor(y[:64])), flag="data",
                     loader_name="train", batch_size=16)
    wl.watch_or_edit(torch.utils.data.TensorDataset(torch.tensor(x[64:]), torch.tensor(y[64:])), flag="data",
                     loader_name="val", batch_size=16, is_training=False)
    exp = wl.get_experiment()
    exp.evaluation = EvaluationController(exp)
    namespace = {"wl": wl, "loss_fn": torch.nn.CrossEntropyLoss(reduction="none")}
    exec(_readme_block("@wl.eval_fn"), namespace)  # noqa: S102 - the README's own example, as written
    assert {"evaluate", "classic"} <= set(exp.eval_fns) and model is exp.models["model"]
    status = exp.evaluation.evaluate("val", eval_fn="evaluate", timeout=60)
    assert status["state"] == "done", status
    assert set(status["metrics"]) == {"eval_accuracy"} and 0 <= status["metrics"]["eval_accuracy"] <= 1
    rows, _, _, _ = exp.history.arrays("eval_loss")
    assert len(rows) == 32  # per-sample values of every val sample


def test_the_readme_mislabel_probability_snippet_runs(wl) -> None:  # noqa: ANN001
    x, _, y, _ = noisy_digits(60)
    wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=60)
    loss = wl.watch_or_edit(lambda v: v, flag="loss", name="loss")
    loss(np.linspace(0.01, 3, 60), batch_ids=list(range(60)))
    namespace = {"wl": wl}
    exec(_readme_block("mislabel_probability("), namespace)  # noqa: S102 - the README's own example
    assert "mislabel_probability" in namespace["df"].columns
    assert namespace["expected_flipped"] == namespace["df"]["mislabel_probability"].sum()


# -- item 9: the root log dir reuse rule ----------------------------------------------------------
# The reload summary line needs a store that persists (weightslab-data-cache): see
# packages/data_cache/tests/test_experiment_reload.py::test_reloading_an_earlier_run_is_one_clear_info_line.


_HOLDER = """
import sys
from weightslab.experiment import Experiment
exp = Experiment(kwargs={"root_log_dir": sys.argv[1]}, environ={"WEIGHTSLAB_ENV_FILE": sys.argv[2]})
exp.start()
print("ready", flush=True)
sys.stdin.readline()
exp.shutdown()
"""


def test_a_second_run_on_the_same_root_log_dir_gets_one_line_with_the_fix(tmp_path: Path) -> None:
    pytest.importorskip("weightslab_data_cache")  # the HDF5 store holds the lock
    root = tmp_path / "root_log_dir"
    env = _environ(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(root), env["WEIGHTSLAB_ENV_FILE"]],
                              stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        for line in holder.stdout:  # its log lines come first (WEIGHTSLAB_LOG_LEVEL INFO)
            if line.strip() == "ready":
                break
        exp = Experiment(kwargs={"root_log_dir": root}, environ=env)
        with pytest.raises(StoreLockedError) as err:
            exp.start()
        message = str(err.value)
        assert "\n" not in message and err.value.__cause__ is None and err.value.__suppress_context__
        assert message.startswith(f"root log dir {root} is in use by another running WeightsLab process "
                                  f"(process {holder.pid})")
        assert "WEIGHTSLAB_ROOT_LOG_DIR=<dir>" in message and "--root-log-dir" in message
        assert not exp.started  # nothing half-started
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0


# -- item 10: a 0-1 estimate next to the unbounded suspected_mislabel score --------------------
def _digits_scores(noise: float, epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """suspected_mislabel after ``epochs`` of a small MLP on digits with ``noise`` flipped labels."""
    from weightslab.mislabel import MislabelTracker

    x, _, y, noisy = noisy_digits(noise=noise, seed=0)
    n = len(y)
    xt, yt = torch.from_numpy(x.reshape(n, -1)), torch.from_numpy(y)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tracker = MislabelTracker()
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
            opt = torch.optim.Adam(model.parameters(), lr=1e-2)
            gen = torch.Generator().manual_seed(0)
            for _ in range(epochs):
                for idx in torch.randperm(n, generator=gen).split(64):
                    logits = model(xt[idx])
                    losses = torch.nn.functional.cross_entropy(logits, yt[idx], reduction="none")
                    opt.zero_grad()
                    losses.mean().backward()
                    opt.step()
                    rows = idx.numpy()
                    tracker.update(rows, losses.detach().numpy(), logits=logits.detach().numpy(), targets=y[rows])
    finally:
        torch.set_num_threads(threads)
    return tracker.columns(n)["suspected_mislabel"], noisy


def test_mislabel_probability_is_calibrated_on_digits_with_injected_noise() -> None:
    from weightslab.mislabel_calibration import mislabel_probability

    scores, noisy = _digits_scores(noise=0.1, epochs=6)
    assert scores.max() > 1.5  # the raw score is no probability
    p = mislabel_probability(scores)
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    assert 0.85 * noisy.sum() <= p.sum() <= 1.1 * noisy.sum()  # the expected count of flipped labels
    assert p[noisy].mean() > 0.8 and p[~noisy].mean() < 0.02
    assert ((p > 0.5) == noisy).mean() > 0.97
    # per group: a group with too few scored rows cannot be fitted (NaN, "cannot tell")
    groups = np.where(np.arange(len(scores)) < 20, "val", "train")
    by_split = mislabel_probability(scores, groups)
    assert np.isnan(by_split[:20]).all() and np.isfinite(by_split[20:]).all()
    assert np.isnan(mislabel_probability(np.r_[scores[:100], np.nan]))[-1]


def test_mislabel_probability_says_cannot_tell_without_a_distinct_noisy_group() -> None:
    from weightslab.mislabel_calibration import mislabel_probability

    clean, _ = _digits_scores(noise=0.0, epochs=6)
    assert np.isnan(mislabel_probability(clean)).all()  # no made-up probabilities on clean data
    early, _ = _digits_scores(noise=0.1, epochs=1)
    assert np.isnan(mislabel_probability(early)).all()  # not separated yet after one epoch
    with pytest.raises(ValueError, match="groups: 3 values for 4 scores"):
        mislabel_probability(np.ones(4), ["a", "b", "c"])


# -- item 13: exports ---------------------------------------------------------------------------
def test_exports_write_what_their_names_say(wl, tmp_path: Path) -> None:  # noqa: ANN001
    import pandas as pd

    x, _, y, _ = noisy_digits(8)
    wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=8)
    loss = wl.watch_or_edit(lambda v: v, flag="loss", name="loss")
    loss(np.arange(8, dtype=float), batch_ids=list(range(8)))
    out = wl.write_dataframe(tmp_path / "x.parquet")
    assert out.read_bytes()[:4] == b"PAR1" and len(pd.read_parquet(out)) == 8
    assert wl.write_dataframe(tmp_path / "x.jsonl").read_text().count("\n") == 8  # JSON lines
    with pytest.raises(ValueError, match=r"'x.xlsx': .xlsx is not an export format; expected a file name "
                                         r"ending in .csv, .json, .parquet"):
        wl.write_dataframe(tmp_path / "x.xlsx")
    assert not (tmp_path / "x.xlsx").exists()
    with pytest.raises(ValueError, match=r"signals: unknown nosuch; recorded: loss"):
        wl.write_history(tmp_path / "h.csv", signals=["nosuch"])
    assert not (tmp_path / "h.csv").exists()
    root = wl.get_experiment().root_log_dir
    assert wl.write_dataframe() == root / "exports" / "samples.csv"  # the documented default paths
    assert wl.write_history() == root / "exports" / "history.csv"
