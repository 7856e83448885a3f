"""Checkpoint restore refuses what it cannot restore faithfully: a bad step, a file that is not a
WeightsLab checkpoint, an optimizer whose parameter groups differ (each check with its own test:
the mutation smoke test found them unobserved)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from test_checkpoints import _setup, _train  # noqa: E402
from weightslab.checkpoints import CheckpointManager  # noqa: E402


@pytest.fixture
def saved(wl):
    s = _setup(wl)
    s.manager = CheckpointManager(s.exp)
    s.exp.checkpoints = s.manager
    _train(wl, s, 3)
    s.entry = s.manager.save(note="guards")
    return s


@pytest.mark.parametrize("step", [-1, True, 1.5, "3"])
def test_restore_refuses_a_step_that_is_not_a_non_negative_integer(saved, step) -> None:
    with pytest.raises(ValueError, match=r"step=.*expected a non-negative integer"):
        saved.manager.restore(step=step, force=True)
    assert saved.manager.restore(step=3, force=True)["step"] == 3  # a valid step still restores


def test_restore_refuses_a_file_that_is_not_a_weightslab_checkpoint(saved) -> None:
    path = saved.manager.directory / saved.entry["path"]
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "format": 999}, path)
    weights = [p.detach().clone() for p in saved.model.parameters()]
    with pytest.raises(ValueError, match="is not a WeightsLab checkpoint"):
        saved.manager.restore(checkpoint_id=saved.entry["id"], force=True)
    assert all(torch.equal(a, b) for a, b in zip(weights, saved.model.parameters(), strict=True))


def test_restore_refuses_an_optimizer_with_other_parameter_groups(saved) -> None:
    extra = torch.nn.Parameter(torch.zeros(3))
    saved.opt.add_param_group({"params": [extra]})  # one group more than when saved
    with pytest.raises(ValueError, match="parameter groups do not match"):
        saved.manager.restore(checkpoint_id=saved.entry["id"], force=True)


def test_restore_refuses_an_optimizer_whose_group_holds_other_parameters(saved) -> None:
    group = saved.opt.param_groups[0]
    group["params"] = group["params"][:-1]  # same number of groups, one parameter fewer in the group
    with pytest.raises(ValueError, match="parameter groups do not match"):
        saved.manager.restore(checkpoint_id=saved.entry["id"], force=True)


def test_step_zero_is_a_valid_step(saved) -> None:
    """0 is accepted as a step (only nothing was saved that early)."""
    with pytest.raises(ValueError, match="no checkpoint at or before step 0"):
        saved.manager.restore(step=0, force=True)


def test_restore_brings_a_hyperparameter_back_up_and_counts_the_restore(saved) -> None:
    saved.exp.set_hyperparameter("lr", 0.01)  # lower than the saved 0.05
    saved.exp.step_boundary()
    assert saved.manager.restores == 0
    saved.manager.restore(checkpoint_id=saved.entry["id"], force=True)
    assert saved.params["lr"] == 0.05 and saved.opt.param_groups[0]["lr"] == 0.05
    assert saved.manager.restores == 1


def test_restore_refuses_a_model_whose_layers_grew(saved) -> None:
    grown = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 48), torch.nn.ReLU(), torch.nn.Linear(48, 10))
    saved.exp.models["model"] = grown  # same parameter names, larger shapes than the checkpoint's
    before = {k: v.clone() for k, v in grown.state_dict().items()}
    with pytest.raises(ValueError, match="model 'model' does not match"):
        saved.manager.restore(checkpoint_id=saved.entry["id"], force=True)
    assert all(torch.equal(v, before[k]) for k, v in grown.state_dict().items())


def test_keep_last_prunes_the_oldest_checkpoints_of_the_branch(wl, monkeypatch) -> None:
    monkeypatch.setenv("WL_CHECKPOINT_KEEP_LAST", "2")
    s = _setup(wl)
    manager = CheckpointManager(s.exp)
    entries = []
    for _ in range(3):
        _train(wl, s, 1)
        entries.append(manager.save())
    assert [e["id"] for e in manager.list()] == [e["id"] for e in entries[1:]]
    assert not (manager.directory / entries[0]["path"]).exists()
    assert all((manager.directory / e["path"]).is_file() for e in entries[1:])
