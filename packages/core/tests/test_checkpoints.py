"""Checkpoints on a real (small) PyTorch run: save, restore at a step, branches, periodic, auto-load."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
from core_testutil import noisy_digits

torch = pytest.importorskip("torch")

from weightslab.checkpoints import CheckpointManager, TrainingNotPaused, branch_hash  # noqa: E402


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def _setup(wl, hp=None, seed=0, n=128, batch_size=16):
    torch.set_num_threads(1)
    x, _, y_noisy, _ = noisy_digits(n)
    xt, yt = torch.tensor(x), torch.tensor(y_noisy)
    train = torch.utils.data.TensorDataset(xt, yt)
    model = wl.watch_or_edit(_model(seed), flag="model")
    params = wl.watch_or_edit(hp or {"lr": 0.05, "batch_size": batch_size}, flag="hp", poll_interval=0.05)
    opt = wl.watch_or_edit(torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=0.9), flag="optimizer")
    loader = wl.watch_or_edit(train, flag="data", loader_name="train", batch_size=batch_size, shuffle=True, seed=1)
    loss = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="train_loss")
    exp = wl.get_experiment()
    return SimpleNamespace(model=model, params=params, opt=opt, loader=loader, loss=loss, exp=exp,
                           fixed=(xt[:32], yt[:32]))


def _train(wl, s, steps):
    done = 0
    while done < steps:
        for x, ids, y in s.loader:
            with wl.guard_training_context:
                s.opt.zero_grad()
                s.loss(s.model(x), y, batch_ids=ids).mean().backward()
                s.opt.step()
            done += 1
            if done >= steps:
                return


def _fixed_losses(s):
    with torch.no_grad():
        x, y = s.fixed
        return torch.nn.functional.cross_entropy(s.model(x), y, reduction="none")


def test_restore_at_a_step_reproduces_its_losses_and_starts_a_branch(wl):
    s = _setup(wl)
    exp = s.exp
    manager = CheckpointManager(exp)
    exp.checkpoints = manager
    _train(wl, s, 5)
    losses_k = _fixed_losses(s)
    rng_k = s.loader._rng.bit_generator.state
    momentum_k = [v["momentum_buffer"].clone() for v in s.opt.state.values()]
    branch_k = exp.branch
    entry = manager.save(note="before the edit")
    assert entry["step"] == 5 and entry["branch"] == branch_k and entry["reason"] == "manual"
    assert (manager.directory / entry["path"]).is_file()
    payload = torch.load(manager.directory / entry["path"], weights_only=True)  # no arbitrary pickle
    assert payload["step"] == 5 and set(payload["models"]) == {"model"}

    # edit data and hyperparameters, train more: everything moves
    wl.discard_samples([3])
    wl.tag_samples([7], "late")
    exp.set_hyperparameter("lr", 0.2)
    exp.step_boundary()  # applies the pending edit
    assert s.opt.param_groups[0]["lr"] == 0.2
    _train(wl, s, 6)
    assert exp.step == 11 and not torch.allclose(_fixed_losses(s), losses_k)

    with pytest.raises(TrainingNotPaused, match="pause"):
        manager.restore(step=7)
    wl.pause()
    result = manager.restore(step=7)  # closest checkpoint at or before step 7
    assert result["id"] == entry["id"] and result["step"] == 5
    assert torch.allclose(_fixed_losses(s), losses_k)
    assert exp.step == 5 and wl.get_age() == 5
    assert all(torch.equal(a, v["momentum_buffer"]) for a, v in zip(momentum_k, s.opt.state.values(), strict=True))
    assert s.opt.param_groups[0]["lr"] == 0.05 and s.params["lr"] == 0.05
    assert s.loader._rng.bit_generator.state == rng_k
    table = exp.table
    assert not table.discarded[table.find(["3"], "train")].any()
    assert not table.tags["late"][table.find(["7"], "train")].any()
    # a new branch whose parent is recorded
    assert exp.branch == result["branch"] != branch_k and result["parent_branch"] == branch_k
    lineage = manager.branches()[exp.branch]
    assert lineage["parent"] == branch_k and lineage["parent_step"] == 5 and lineage["from_checkpoint"] == entry["id"]
    manifest = json.loads(manager.manifest_path.read_text())
    assert [e["id"] for e in manifest["checkpoints"]] == [entry["id"]] == [e["id"] for e in manager.list()]
    assert manifest["branches"][exp.branch]["parent"] == branch_k
    # restoring the same checkpoint again: same hash, so a suffixed branch
    first = exp.branch
    again = manager.restore(checkpoint_id=entry["id"])
    assert again["branch"] != first and branch_hash(again["branch"]) == branch_hash(first)
    # training continues on the new branch and checkpoints there
    wl.resume()
    assert exp.branch == again["branch"]  # nothing edited: resuming keeps the restored branch and its lineage
    _train(wl, s, 2)
    later = manager.save()
    assert later["branch"] == again["branch"] and later["parent_branch"] == branch_k
    assert [e["id"] for e in manager.list(branch=again["branch"])] == [later["id"]]
    assert not list(manager.directory.glob("*.tmp"))


def test_periodic_checkpoints_every_n_steps(wl):
    s = _setup(wl, hp={"lr": 0.05, "batch_size": 16, "checkpoint_every_n_steps": 3})
    exp = s.exp
    manager = getattr(exp, "checkpoints", None)
    if manager is None:  # not wired into Experiment.step_end yet: an optimizer hook stands in for it
        manager = CheckpointManager(exp)
        exp.checkpoints = manager
        s.opt.register_step_post_hook(lambda *_: manager.on_step_end(exp.step))
    _train(wl, s, 10)
    entries = manager.list()
    assert [e["step"] for e in entries] == [3, 6, 9] and {e["reason"] for e in entries} == {"periodic"}
    assert all((manager.directory / e["path"]).is_file() for e in entries)
    exp.set_hyperparameter("checkpoint_every_n_steps", 0)  # live: 0 turns it off
    exp.step_boundary()
    _train(wl, s, 3)
    assert [e["step"] for e in manager.list()] == [3, 6, 9]
    assert CheckpointManager(exp, every_n_steps=4).every_n() == 4  # the constructor wins over the key
    other = CheckpointManager(exp).save()  # a second manager on the same directory: nothing is lost
    assert [e["id"] for e in manager.list()][-1] == other["id"] and len(manager.list()) == 4


def test_auto_load_latest_in_a_fresh_experiment(wl):
    from weightslab.sdk import reset_experiment

    s = _setup(wl)
    _train(wl, s, 4)
    saved = CheckpointManager(s.exp).save()
    weights = {k: v.clone() for k, v in s.model.state_dict().items()}
    root = s.exp.root_log_dir
    reset_experiment()  # the script restarts: same root log dir, fresh objects

    s2 = _setup(wl, seed=123)
    assert s2.exp is not s.exp and s2.exp.root_log_dir == root
    assert CheckpointManager(s2.exp).auto_load_latest(skip_previous_auto_load=True) is None
    assert not torch.equal(s2.model.state_dict()["1.weight"], weights["1.weight"])
    manager = CheckpointManager(s2.exp)
    result = manager.auto_load_latest()
    assert result is not None and result["id"] == saved["id"] and result["parent_branch"] == saved["branch"]
    assert all(torch.equal(v, weights[k]) for k, v in s2.model.state_dict().items())
    assert s2.exp.step == 4 and s2.exp.branch == result["branch"]
    assert manager.auto_load_latest() is None  # once per manager
    reset_experiment()

    s3 = _setup(wl, hp={"lr": 0.05, "batch_size": 16, "skip_previous_auto_load": True}, seed=123)
    assert CheckpointManager(s3.exp).auto_load_latest() is None  # told not to, by the config key
    assert not torch.equal(s3.model.state_dict()["1.weight"], weights["1.weight"])


def test_bad_inputs_name_the_field(wl):
    s = _setup(wl)
    exp = s.exp
    manager = CheckpointManager(exp)
    with pytest.raises(ValueError, match="checkpoint_id: no checkpoint saved yet"):
        manager.restore()
    _train(wl, s, 3)
    entry = manager.save()
    wl.pause()
    with pytest.raises(ValueError, match="checkpoint_id='nope': unknown checkpoint"):
        manager.restore(checkpoint_id="nope")
    with pytest.raises(ValueError, match="branch='zzz': unknown branch"):
        manager.restore(branch="zzz")
    with pytest.raises(ValueError, match="step=-1"):
        manager.restore(step=-1)
    with pytest.raises(ValueError, match="step=2: no checkpoint at or before step 2"):
        manager.restore(step=2)
    with pytest.raises(ValueError, match="every_n_steps=-1"):
        CheckpointManager(exp, every_n_steps=-1)
    with pytest.raises(ValueError, match="reason=''"):
        manager.save(reason="")
    # a checkpoint that does not fit the watched model changes nothing
    exp.models["model"] = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    before = {k: v.clone() for k, v in exp.models["model"].state_dict().items()}
    with pytest.raises(ValueError, match="model 'model' does not match"):
        manager.restore(checkpoint_id=entry["id"])
    assert all(torch.equal(v, before[k]) for k, v in exp.models["model"].state_dict().items())
    assert exp.step == 3
    assert np.array_equal([e["id"] for e in manager.list()], [entry["id"]])


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def checkpoint_log():
    logger = logging.getLogger("weightslab.checkpoints")
    handler = _Records()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_a_corrupt_manifest_is_kept_aside_and_rebuilt_not_replaced(wl, checkpoint_log):
    s = _setup(wl)
    manager = CheckpointManager(s.exp)
    _train(wl, s, 2)
    first = manager.save(note="one")
    _train(wl, s, 2)
    second = manager.save()
    broken = b'{"format": 1, "checkpoints": [{"id": '  # a torn write / bad edit
    manager.manifest_path.write_bytes(broken)

    fresh = CheckpointManager(s.exp)  # e.g. the next process; then it saves again
    assert [(e["id"], e["step"], e["branch"]) for e in fresh.list()] == [
        (first["id"], 2, first["branch"]), (second["id"], 4, second["branch"])]
    third = fresh.save()
    assert [e["id"] for e in CheckpointManager(s.exp).list()] == [first["id"], second["id"], third["id"]]
    aside = list(manager.directory.glob("manifest.json.unreadable-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == broken  # the broken file is kept, untouched
    assert any("unreadable" in m and aside[0].name in m and "rebuilt 2" in m for m in checkpoint_log.messages)
    wl.pause()
    restored = fresh.restore(checkpoint_id=first["id"])
    assert restored["step"] == 2 and s.exp.step == 2


def test_a_failed_auto_load_starts_fresh_and_says_so(wl, checkpoint_log):
    from weightslab.sdk import reset_experiment

    s = _setup(wl)
    _train(wl, s, 3)
    saved = CheckpointManager(s.exp).save()
    reset_experiment()  # the script restarts with a changed model: the checkpoint does not fit

    torch.manual_seed(5)
    changed = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    before = {k: v.clone() for k, v in changed.state_dict().items()}
    s2 = _setup(wl)
    s2.exp.models["model"] = changed
    s2.model = changed
    s2.opt = torch.optim.SGD(changed.parameters(), lr=0.0)
    s2.exp.optimizers = {"opt": s2.opt}
    _train(wl, s2, 1)  # the first step boundary runs the auto-load
    assert s2.exp.step < saved["step"] and "-r" not in s2.exp.branch  # started fresh, did not restore
    assert all(torch.equal(v, before[k]) for k, v in changed.state_dict().items())
    assert any(f"auto-load of checkpoint {saved['id']} failed, starting fresh" in m for m in checkpoint_log.messages)


def test_restore_brings_categorical_tags_back_as_saved(wl):
    """Every value of a categorical tag is restored on its own rows, and a categorical tag created
    after the checkpoint is cleared (both went unnoticed by the mutation smoke test)."""
    s = _setup(wl)
    manager = CheckpointManager(s.exp)
    wl.tag_samples([1, 2], "quality", value="sharp")
    wl.tag_samples([3], "quality", value="blurry")
    _train(wl, s, 2)
    entry = manager.save()
    table = s.exp.table

    def column(name):
        col = table.categories[name]
        return {sid: col[table.find([str(sid)], "train")[0]] for sid in range(6)}

    saved = column("quality")
    assert saved == {0: None, 1: "sharp", 2: "sharp", 3: "blurry", 4: None, 5: None}
    wl.tag_samples([1], "quality", value="blurry")
    wl.tag_samples([4], "quality", value="sharp")
    wl.tag_samples([5], "reviewed", value="yes")  # a categorical tag the checkpoint does not know
    wl.pause()
    manager.restore(checkpoint_id=entry["id"])
    assert column("quality") == saved
    assert not any(v is not None for v in table.categories["reviewed"][: table.n])


def test_an_edit_then_resume_records_the_new_branch_with_its_parent(wl):
    """Resuming after an edit starts a new branch; the checkpoint manager notes it once, with the
    branch and step it came from (the lineage a later restore shows); an unchanged branch adds nothing."""
    s = _setup(wl)
    exp = s.exp
    _train(wl, s, 3)
    parent, at = exp.branch, exp.step
    assert parent and parent not in exp.checkpoints.branches()  # the first branch has no parent entry
    exp.control.pause()
    exp.edit("discard", ids=["0", "1", "2"], split="train")
    exp.control.resume()
    _train(wl, s, 2)
    child = exp.branch
    assert child != parent
    lineage = exp.checkpoints.branches()
    assert lineage[child]["parent"] == parent and lineage[child]["parent_step"] == at
    assert lineage[child]["reason"] == "edit"
    _train(wl, s, 2)
    assert exp.checkpoints.branches() == lineage
