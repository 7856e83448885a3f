"""Issue 12 items 3 and 13 on a real (small) PyTorch run: secrets never in checkpoints, restore never
changes server/TLS/secret keys, keep-last-N, disk full, relative paths, manifest containment."""

from __future__ import annotations

import json
import os

import pytest

torch = pytest.importorskip("torch")

import weightslab.checkpoints as ckpt  # noqa: E402
from test_checkpoints import _setup, _train  # noqa: E402

SECRET = "sk-or-v1-checkpoint-secret-0000"


def _hp() -> dict:
    return {"lr": 0.05, "batch_size": 16, "grpc_tls_enabled": True, "openrouter_api_key": SECRET}


def test_secrets_are_not_saved_and_restore_keeps_security_keys(wl) -> None:  # noqa: ANN001
    s = _setup(wl, hp=_hp())
    exp = s.exp
    _train(wl, s, 2)
    entry = exp.checkpoints.save()
    raw = (exp.checkpoints.directory / entry["path"]).read_bytes()
    assert SECRET.encode() not in raw
    payload = torch.load(exp.checkpoints.directory / entry["path"], weights_only=True)
    assert "openrouter_api_key" not in json.loads(payload["hyperparameters"])
    exp.set_hyperparameter("grpc_tls_enabled", False)
    exp.set_hyperparameter("openrouter_api_key", "sk-new")
    exp.set_hyperparameter("lr", 0.01)
    exp.hp.apply_pending()
    exp.checkpoints.restore(checkpoint_id=entry["id"], force=True)
    flat = exp.hp.flat()
    assert flat["lr"] == 0.05  # ordinary hyperparameters are restored
    assert flat["grpc_tls_enabled"] is False and flat["openrouter_api_key"] == "sk-new"  # never by a restore


def test_keep_last_n_per_branch_deletes_the_oldest(wl, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("WL_CHECKPOINT_KEEP_LAST", "2")
    s = _setup(wl)
    exp = s.exp
    exp.reload_config()
    saved = []
    for _ in range(4):
        _train(wl, s, 1)
        saved.append(exp.checkpoints.save())
    listed = [e["id"] for e in exp.checkpoints.list()]
    assert listed == [saved[2]["id"], saved[3]["id"]]
    assert sorted(p.name for p in exp.checkpoints.directory.glob("ckpt-*.pt")) == \
        sorted(f"{e['id']}.pt" for e in saved[2:])


def test_disk_full_is_a_clear_error_without_absolute_paths(wl, monkeypatch) -> None:  # noqa: ANN001
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    s = _setup(wl)
    exp = s.exp
    _train(wl, s, 1)

    def write_to_full_disk(path, write) -> None:  # noqa: ANN001 - the kernel's real ENOSPC
        with open("/dev/full", "wb") as fh:
            write(fh)
            fh.flush()

    monkeypatch.setattr(ckpt, "_atomic_write", write_to_full_disk)
    with pytest.raises(OSError, match="no space left on the disk holding checkpoints") as err:
        exp.checkpoints.save()
    assert str(exp.root_log_dir) not in str(err.value)
    assert exp.checkpoints.list() == []


def test_manifest_paths_outside_the_directory_are_refused(wl, tmp_path) -> None:  # noqa: ANN001
    s = _setup(wl)
    exp = s.exp
    _train(wl, s, 1)
    entry = exp.checkpoints.save()
    outside = tmp_path / "elsewhere.pt"
    outside.write_bytes((exp.checkpoints.directory / entry["path"]).read_bytes())
    manifest = json.loads(exp.checkpoints.manifest_path.read_text())
    manifest["checkpoints"][0]["path"] = os.path.relpath(outside, exp.checkpoints.directory)
    exp.checkpoints.manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="not a file inside the checkpoint directory"):
        exp.checkpoints.restore(checkpoint_id=entry["id"], force=True)
    manifest["checkpoints"][0]["path"] = "ckpt-missing.pt"
    exp.checkpoints.manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"file checkpoints/ckpt-missing.pt is missing") as err:
        exp.checkpoints.restore(checkpoint_id=entry["id"], force=True)
    assert str(exp.root_log_dir) not in str(err.value)


UNPICKLED: list[str] = []


def _ran_on_load() -> str:
    UNPICKLED.append("code ran")
    return "payload"


class _Hostile:
    """Pickles as a call to ``_ran_on_load``: what a tampered checkpoint file could carry."""

    def __reduce__(self) -> tuple:
        return (_ran_on_load, ())


def test_a_checkpoint_carrying_pickled_code_is_refused_without_running_it(wl) -> None:  # noqa: ANN001
    """Checkpoints load with ``weights_only``: a file whose payload would call a function when
    unpickled is refused and the function never runs (no pickle of what crosses a process boundary)."""
    s = _setup(wl)
    exp = s.exp
    _train(wl, s, 2)
    entry = exp.checkpoints.save()
    path = exp.checkpoints.directory / entry["path"]
    payload = torch.load(path, weights_only=True)
    payload["extra"] = _Hostile()
    torch.save(payload, path)
    UNPICKLED.clear()
    with pytest.raises(ValueError, match="holds objects other than tensors and plain data; refused"):
        exp.checkpoints.restore(checkpoint_id=entry["id"], force=True)
    assert UNPICKLED == []
