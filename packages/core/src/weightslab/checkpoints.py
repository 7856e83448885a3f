"""Runs and checkpoints: model + optimizer + data-state checkpoints under the root log dir.

Layout: ``<root_log_dir>/checkpoints/<id>.pt`` (``torch.save``) and ``manifest.json``::

    {"format": 1,
     "checkpoints": [{"id", "step", "branch", "parent_branch", "path", "time", "reason", "note",
                      "models", "optimizers"}, ...],
     "branches": {"<branch>": {"parent", "parent_step", "from_checkpoint", "previous_branch",
                               "reason", "created"}}}

Both are written atomically (temporary file, fsync, ``os.replace``). A checkpoint holds only
tensors, numbers, text, lists and dicts, so it loads with ``torch.load(weights_only=True)``:
the data state (discarded mask, tags, categorical tags keyed by ``(split, sample_id)``), the
watched loaders' RNG states and the hyperparameters are stored as tensors / JSON text, never
as pickled Python objects.

Branches: the experiment hash (hyperparameters + data mask + model structure,
``experiment.compute_hash()``) names a branch. Restoring a checkpoint starts a new branch:
the hash of the restored state, with a ``-r<n>`` suffix when that name is already taken
(e.g. restoring step k of the current branch); its parent (the checkpoint's branch and
step) is recorded in the manifest. :func:`branch_hash` strips the suffix.

Settings:

* ``every_n_steps`` (constructor) or the hyperparameter ``checkpoint_every_n_steps``
  (live-editable; ``0`` or absent = no periodic checkpoints): :meth:`CheckpointManager.on_step_end`
  saves every N optimizer steps.
* ``skip_previous_auto_load`` (argument of :meth:`CheckpointManager.auto_load_latest`, else the
  hyperparameter ``skip_previous_auto_load``): a restarted script does not resume from the
  latest checkpoint.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import json
import logging
import os
import pickle  # only to name the error torch.load(weights_only=True) raises
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from weightslab._torch import is_tensor, torch_or_none
from weightslab.labels import checkpoint_state, restore_checkpoint_state
from weightslab.labels import persist_rows as persist_label_rows
from weightslab.lock import try_acquire_rlock
from weightslab.secrets import is_secret_name

if TYPE_CHECKING:
    from weightslab.experiment import Experiment

log = logging.getLogger("weightslab.checkpoints")

FORMAT = 1
MANIFEST = "manifest.json"
BRANCH_SUFFIX = "-r"
EVERY_N_KEY = "checkpoint_every_n_steps"
SKIP_AUTO_LOAD_KEY = "skip_previous_auto_load"
# Hyperparameters that also feed security configuration: a restore never changes them.
_PROTECTED_PREFIXES = ("grpc_", "cli_", "auth", "audit", "tls")
_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def restorable_key(key: str) -> bool:
    """False for secret-named keys and keys that configure the servers (``grpc_*``, TLS, auth, audit)."""
    leaf = key.rsplit(".", 1)[-1].lower()
    return not (is_secret_name(key) or leaf.startswith(_PROTECTED_PREFIXES) or "tls" in leaf.split("_"))


def _saved_hyperparameters(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """What a checkpoint stores: everything but secret-named values (never written to a checkpoint)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if is_secret_name(str(key)) or is_secret_name(path):
            continue
        out[key] = _saved_hyperparameters(value, path) if isinstance(value, Mapping) else value
    return out


class TrainingNotPaused(RuntimeError):
    """A restore needs the training loop paused (or not started)."""


def branch_hash(branch: str) -> str:
    """The experiment hash a branch name derives from (``abc123-r2`` -> ``abc123``)."""
    return branch.split(BRANCH_SUFFIX, 1)[0]


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename durable (best effort; not on every OS)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_DIR_LOCKS: dict[str, threading.RLock] = {}
_DIR_LOCKS_GUARD = threading.Lock()


def _directory_lock(directory: Path) -> threading.RLock:
    """One lock per checkpoint directory: managers in this process never interleave manifest writes."""
    key = os.path.abspath(directory)
    with _DIR_LOCKS_GUARD:
        lock = _DIR_LOCKS.get(key)
        if lock is None:
            lock = _DIR_LOCKS[key] = threading.RLock()
        return lock


def _to_cpu(obj: Any) -> Any:
    """Deep copy of a state dict with every tensor detached and copied to the CPU."""
    if is_tensor(obj):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(v) for v in obj)
    return obj


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


class CheckpointManager:
    def __init__(self, experiment: Experiment, directory: str | Path | None = None,
                 every_n_steps: int | None = None, *, lock_timeout: float = 60.0) -> None:
        if every_n_steps is not None and (not isinstance(every_n_steps, int) or isinstance(every_n_steps, bool)
                                          or every_n_steps < 0):
            raise ValueError(f"every_n_steps={every_n_steps!r}: expected a non-negative integer or None")
        self.experiment = experiment
        self._directory = Path(directory).expanduser() if directory is not None else None
        self.every_n_steps = every_n_steps
        self.lock_timeout = lock_timeout
        self._manifest: dict[str, Any] | None = None
        self._manifest_stamp: tuple[int, int] | None = None
        self._last_branch: str | None = None
        self._last_step = 0
        self._last_saved_step: int | None = None
        self._auto_loaded = False
        self.restores = 0  # restores done (a distributed job syncs the other ranks after each)
        self._warned_every_n = False

    # -- manifest -----------------------------------------------------------
    @property
    def directory(self) -> Path:
        """``<root_log_dir>/checkpoints`` unless given (follows a root log dir chosen later)."""
        return self._directory if self._directory is not None else self.experiment.root_log_dir / "checkpoints"

    @property
    def _mlock(self) -> threading.RLock:
        return _directory_lock(self.directory)

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.manifest_path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _load(self) -> dict[str, Any]:
        """The manifest, re-read when the file changed (another manager or process wrote it)."""
        stamp = self._stamp()
        if self._manifest is None or (stamp is not None and stamp != self._manifest_stamp):
            manifest: dict[str, Any] = {"format": FORMAT, "checkpoints": [], "branches": {}}
            path = self.manifest_path
            if stamp is not None:
                try:
                    data = json.loads(path.read_text())
                    if not isinstance(data, dict):
                        raise ValueError("not a JSON object")
                    manifest["checkpoints"] = [e for e in data.get("checkpoints", []) if isinstance(e, dict)]
                    branches = data.get("branches", {})
                    manifest["branches"] = branches if isinstance(branches, dict) else {}
                except (OSError, ValueError) as exc:
                    # Never overwrite it: earlier checkpoints would vanish from list/restore.
                    manifest["checkpoints"] = self._recover_manifest(path, exc)
                    stamp = None  # the rebuilt manifest is written below
            if self._manifest is not None:  # keep lineage noted here but not written yet
                for name, info in self._manifest["branches"].items():
                    manifest["branches"].setdefault(name, info)
            self._manifest = manifest
            self._manifest_stamp = stamp
            if stamp is None and manifest["checkpoints"]:
                self._write_manifest()
        return self._manifest

    def _recover_manifest(self, path: Path, error: Exception) -> list[dict[str, Any]]:
        """Keep an unreadable manifest aside and rebuild its entries from the checkpoint files."""
        aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}")
        try:
            os.replace(path, aside)
        except OSError as exc:
            raise RuntimeError(f"{path} is unreadable ({error}) and could not be kept aside ({exc}): "
                               "refusing to overwrite it; repair or move it, then retry") from exc
        entries = []
        torch = torch_or_none()
        for file in sorted(path.parent.glob("ckpt-*.pt")):
            try:
                if torch is None:
                    raise RuntimeError("torch is not installed")
                payload = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
                entries.append({
                    "id": str(payload["id"]), "step": int(payload["step"]), "branch": str(payload["branch"]),
                    "parent_branch": None, "path": file.name, "time": float(payload["time"]),
                    "reason": "recovered", "note": "rebuilt from the checkpoint file",
                    "models": sorted(payload.get("models", {})), "optimizers": sorted(payload.get("optimizers", {}))})
            except Exception as exc:  # one bad file must not hide the others
                log.warning("checkpoint file %s not recovered: %s", file, exc)
        entries.sort(key=lambda e: (e["time"], e["step"]))
        log.warning("%s was unreadable (%s): kept it as %s and rebuilt %d checkpoint entries from the "
                    "checkpoint files (branch lineage is not recovered)", path, error, aside.name, len(entries))
        return entries

    def _write_manifest(self) -> None:
        """Write the in-memory manifest (callers hold ``_mlock`` and mutated what ``_load()`` gave)."""
        manifest = self._manifest if self._manifest is not None else self._load()
        text = json.dumps(manifest, indent=1, default=_json_default).encode()
        _atomic_write(self.manifest_path, lambda fh: fh.write(text))
        self._manifest_stamp = self._stamp()

    def list(self, branch: str | None = None) -> list[dict[str, Any]]:
        """Checkpoint entries, oldest first (only ``branch``'s when given)."""
        with self._mlock:
            entries = [dict(e) for e in self._load()["checkpoints"]]
        if branch is not None:
            entries = [e for e in entries if e.get("branch") == branch]
        return entries

    def branches(self) -> dict[str, dict[str, Any]]:
        """Known branch lineage: ``{branch: {"parent", "parent_step", ...}}``."""
        self._track_branch()
        with self._mlock:
            return {k: dict(v) for k, v in self._load()["branches"].items()}

    def _track_branch(self) -> None:
        """Note a branch change (e.g. resume after an edit) with its parent, once."""
        exp = self.experiment
        current = str(exp.branch)
        if current == self._last_branch or not current:  # every step: no lock unless the branch changed
            self._last_step = int(exp.step)
            return
        with self._mlock:
            if current and current != self._last_branch:
                branches = self._load()["branches"]
                if current not in branches and self._last_branch:
                    branches[current] = {"parent": self._last_branch, "parent_step": self._last_step,
                                         "reason": "edit", "created": time.time()}
                self._last_branch = current
            self._last_step = int(exp.step)

    # -- settings -----------------------------------------------------------
    def every_n(self) -> int | None:
        """Periodic interval: the constructor's, else the ``checkpoint_every_n_steps`` hyperparameter."""
        if self.every_n_steps is not None:
            return self.every_n_steps or None
        hp = self.experiment.hp
        value = hp.get(EVERY_N_KEY) if hp is not None else None
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            if not self._warned_every_n:
                self._warned_every_n = True
                log.warning("%s=%r: expected a non-negative integer; periodic checkpoints are off",
                            EVERY_N_KEY, value)
            return None
        return value or None

    # -- saving -------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, timeout: float | None) -> Iterator[None]:
        lock = self.experiment.lock
        if lock.held_by_current_thread():  # e.g. a periodic save from the training step
            with lock:
                yield
            return
        with try_acquire_rlock(lock, self.lock_timeout if timeout is None else timeout):
            yield

    def save(self, reason: str = "manual", note: str | None = None, *,
             lock_timeout: float | None = None) -> dict[str, Any]:
        """Save models, optimizers and data state; returns the manifest entry.

        The state is copied under the main lock (so never in the middle of a training step);
        the file is written after releasing it.
        """
        torch = _require_torch()
        if not isinstance(reason, str) or not reason:
            raise ValueError(f"reason={reason!r}: expected a non-empty text")
        if note is not None and not isinstance(note, str):
            raise ValueError(f"note={note!r}: expected text")
        exp = self.experiment
        if not exp.models and not exp.optimizers:
            raise ValueError("nothing to checkpoint: no model or optimizer is watched")
        self._track_branch()
        with self._locked(lock_timeout):
            step, branch = int(exp.step), str(exp.branch)
            payload = self._payload(torch)
        cid = f"ckpt-{step:08d}-{uuid.uuid4().hex[:8]}"
        now = time.time()
        payload.update({"id": cid, "step": step, "branch": branch, "time": now})
        path = self.directory / f"{cid}.pt"
        try:
            _atomic_write(path, lambda fh: torch.save(payload, fh))
        except OSError as exc:
            if exc.errno in _DISK_FULL or "No space left" in str(exc):
                raise OSError(exc.errno or errno.ENOSPC,
                              f"checkpoint at step {step} not saved: no space left on the disk holding "
                              f"{self.relative(self.directory)}; free space or keep fewer checkpoints "
                              "(WL_CHECKPOINT_KEEP_LAST)") from None
            raise
        with self._mlock:
            manifest = self._load()
            parent = manifest["branches"].get(branch, {}).get("parent")
            entry = {"id": cid, "step": step, "branch": branch, "parent_branch": parent, "path": path.name,
                     "time": now, "reason": reason, "note": note or "", "models": sorted(exp.models),
                     "optimizers": sorted(exp.optimizers)}
            manifest["checkpoints"].append(entry)
            dropped = self._prune(manifest, branch)
            self._write_manifest()
        for old in dropped:  # after the manifest no longer lists them
            with contextlib.suppress(ValueError):
                self._file_of(old).unlink(missing_ok=True)
        self._last_saved_step = step
        log.info("checkpoint %s saved at step %d on branch %s (%s)", cid, step, branch, reason)
        return dict(entry)

    def keep_last(self) -> int:
        """Checkpoints kept per branch (``WL_CHECKPOINT_KEEP_LAST`` / config key; 0 = all)."""
        try:
            return int(self.experiment.config["experiment"].checkpoint_keep_last)
        except (KeyError, AttributeError, TypeError):
            return 0

    def _prune(self, manifest: dict[str, Any], branch: str) -> builtins.list[dict[str, Any]]:
        """Drop ``branch``'s oldest entries beyond :meth:`keep_last`; returns them (files not yet deleted)."""
        keep = self.keep_last()
        if keep <= 0:
            return []
        mine = [e for e in manifest["checkpoints"] if e.get("branch") == branch]
        if len(mine) <= keep:
            return []
        mine.sort(key=lambda e: (float(e.get("time", 0)), int(e.get("step", 0))))
        dropped = mine[: len(mine) - keep]
        ids = {id(e) for e in dropped}
        manifest["checkpoints"] = [e for e in manifest["checkpoints"] if id(e) not in ids]
        log.info("checkpoints: keeping the last %d of branch %s; removed %s", keep, branch,
                 ", ".join(str(e.get("id")) for e in dropped))
        return dropped

    def relative(self, path: Path) -> str:
        """``path`` for a message: relative to the root log dir (no absolute paths in errors)."""
        root = self.experiment.root_log_dir
        try:
            return str(Path(os.path.abspath(path)).relative_to(os.path.abspath(root)))
        except ValueError:
            return path.name

    def _file_of(self, entry: Mapping[str, Any]) -> Path:
        """The checkpoint file a manifest entry names, refused unless it lies inside the directory."""
        name = str(entry.get("path", ""))
        path = self.directory / name
        if not name or Path(name).name != name or name in (".", "..") or \
                not os.path.realpath(path).startswith(os.path.realpath(self.directory) + os.sep):
            raise ValueError(f"checkpoint_id={entry.get('id')!r}: the manifest names {name!r}, which is not a "
                             "file inside the checkpoint directory; refused")
        return path

    def _payload(self, torch: Any) -> dict[str, Any]:
        exp = self.experiment
        with exp.data_lock:
            table = exp.table
            n = table.n
            data = {
                "split": [str(s) for s in table.split[:n].tolist()],
                "sample_id": [str(s) for s in table.sample_id[:n].tolist()],
                "discarded": torch.from_numpy(table.discarded[:n].copy()),
                "tags": {name: torch.from_numpy(col[:n].copy()) for name, col in table.tags.items()},
                "categories": {name: [None if v is None else str(v) for v in col[:n].tolist()]
                               for name, col in table.categories.items()},
                "labels": checkpoint_state(table, exp.label_edits),  # corrected class labels
            }
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
        loader_rng = {name: loader._rng.bit_generator.state for name, loader in exp.loaders.items()
                      if getattr(loader, "_rng", None) is not None}
        return {
            "format": FORMAT,
            "models": {name: _to_cpu(m.state_dict()) for name, m in exp.models.items()},
            "optimizers": {name: _to_cpu(o.state_dict()) for name, o in exp.optimizers.items()},
            "data": data,
            "loader_rng": json.dumps(loader_rng, default=_json_default),
            "hyperparameters": json.dumps(_saved_hyperparameters(exp.hp.as_dict()) if exp.hp is not None else {},
                                          default=_json_default),
            "rng": rng,
        }

    def on_step_end(self, step: int | None = None) -> dict[str, Any] | None:
        """Called after every optimizer step: tracks branch changes, saves every N steps.

        Never raises (a failed periodic save is logged; training goes on).
        """
        exp = self.experiment
        step = int(exp.step if step is None else step)
        try:
            self._track_branch()
            every = self.every_n()
            if every and step > 0 and step % every == 0 and step != self._last_saved_step:
                return self.save(reason="periodic")
        except Exception:
            log.exception("periodic checkpoint at step %d failed", step)
        return None

    # -- restoring ----------------------------------------------------------
    def _find(self, step: int | None, branch: str | None, checkpoint_id: str | None) -> dict[str, Any]:
        with self._mlock:
            entries = [dict(e) for e in self._load()["checkpoints"]]
            lineage = dict(self._load()["branches"])
        if checkpoint_id is not None:
            if not isinstance(checkpoint_id, str) or not checkpoint_id:
                raise ValueError(f"checkpoint_id={checkpoint_id!r}: expected a checkpoint id")
            for entry in entries:
                if entry.get("id") == checkpoint_id:
                    return entry
            raise ValueError(f"checkpoint_id={checkpoint_id!r}: unknown checkpoint (see list())")
        if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
            raise ValueError(f"step={step!r}: expected a non-negative integer or None")
        if branch is not None:
            if not isinstance(branch, str) or not branch:
                raise ValueError(f"branch={branch!r}: expected a branch name")
            if branch not in lineage and not any(e.get("branch") == branch for e in entries):
                known = sorted({str(e.get("branch")) for e in entries})
                raise ValueError(f"branch={branch!r}: unknown branch; branches with checkpoints: "
                                 f"{', '.join(known) or 'none'}")
        if not entries:
            raise ValueError(f"checkpoint_id: no checkpoint saved yet under {self.relative(self.directory)}")
        start = branch if branch is not None else str(self.experiment.branch)
        found = _closest_in_lineage(entries, lineage, start, step)
        if found is None and branch is None:  # current branch unknown to the manifest: any branch
            candidates = [e for e in entries if step is None or int(e["step"]) <= step]
            if candidates:
                found = max(candidates, key=lambda e: (int(e["step"]), float(e.get("time", 0))))
        if found is None:
            raise ValueError(f"step={step!r}: no checkpoint at or before step {step} on branch {start!r} "
                             "(or its ancestors)")
        return found

    def restore(self, step: int | None = None, branch: str | None = None, checkpoint_id: str | None = None, *,
                force: bool = False, restore_hyperparameters: bool = True, lock_timeout: float | None = None,
                reason: str = "restore") -> dict[str, Any]:
        """Restore the checkpoint ``checkpoint_id``, or the closest one at or before ``step`` on
        ``branch`` (default: the current branch and its ancestors; ``step`` None = latest).

        Restores model and optimizer state, hyperparameters, discarded/tags, loader and torch
        RNG states and the step counter, then starts a new branch whose parent is recorded.
        The training loop must be paused (or not started) unless ``force``. Returns the
        checkpoint entry with ``branch`` = the new branch and ``parent_branch``.
        """
        torch = _require_torch()
        exp = self.experiment
        entry = self._find(step, branch, checkpoint_id)
        state = exp.control.state.value
        if state == "evaluating":
            raise TrainingNotPaused("an evaluation pass is running: restore after it ends")
        if not force and state == "running" and getattr(exp, "_last_step_end", None) is not None \
                and not exp.control.waiting:
            raise TrainingNotPaused("training is running: pause it (wl.pause() / Pause) before restoring a "
                                    "checkpoint")
        path = self._file_of(entry)
        if not path.is_file():
            raise ValueError(f"checkpoint_id={entry['id']!r}: file {self.relative(path)} is missing")
        try:  # tensors and plain data only: never code from a file
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise ValueError(f"checkpoint_id={entry['id']!r}: {self.relative(path)} holds objects other than "
                             "tensors and plain data; refused (checkpoints load with weights_only)") from exc
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"checkpoint_id={entry['id']!r}: {self.relative(path)} is not a WeightsLab "
                             f"checkpoint (format {FORMAT})")
        self._track_branch()
        with self._locked(lock_timeout):
            self._check_compatible(entry["id"], payload)
            previous = str(exp.branch)
            if restore_hyperparameters:
                self._restore_hyperparameters(payload)
            for name, sd in payload["models"].items():
                if name in exp.models:
                    exp.models[name].load_state_dict(sd)
            for name, sd in payload["optimizers"].items():
                if name in exp.optimizers:
                    exp.optimizers[name].load_state_dict(sd)
            self._restore_data(payload["data"])
            for name, rng_state in json.loads(payload.get("loader_rng") or "{}").items():
                loader = exp.loaders.get(name)
                if loader is not None and getattr(loader, "_rng", None) is not None:
                    loader._rng.bit_generator.state = rng_state
            rng = payload.get("rng") or {}
            if is_tensor(rng.get("torch")):
                torch.set_rng_state(rng["torch"])
            if rng.get("cuda") and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
            exp.step = int(entry["step"])
            new_branch = self._new_branch_name(exp.compute_hash())
            exp.branch = new_branch
            with self._mlock:
                self._load()["branches"][new_branch] = {
                    "parent": entry["branch"], "parent_step": int(entry["step"]), "from_checkpoint": entry["id"],
                    "previous_branch": previous, "reason": reason, "created": time.time()}
                self._last_branch = new_branch
                self._last_step = exp.step
                self._last_saved_step = exp.step
                self._write_manifest()
            self.restores += 1
        log.info("restored checkpoint %s (step %d, branch %s): new branch %s", entry["id"], entry["step"],
                 entry["branch"], new_branch)
        return {**entry, "checkpoint_branch": entry["branch"], "branch": new_branch,
                "parent_branch": entry["branch"], "previous_branch": previous, "restored": True}

    def _check_compatible(self, cid: str, payload: Mapping[str, Any]) -> None:
        """Fail before changing anything when the watched objects do not match the checkpoint."""
        exp = self.experiment
        for name, sd in payload["models"].items():
            model = exp.models.get(name)
            if model is None:
                log.warning("checkpoint %s: model %r is not watched; skipped", cid, name)
                continue
            current = model.state_dict()
            missing = sorted(set(current) - set(sd))
            unexpected = sorted(set(sd) - set(current))
            shapes = [k for k in set(current) & set(sd)
                      if is_tensor(sd[k]) and tuple(sd[k].shape) != tuple(current[k].shape)]
            if missing or unexpected or shapes:
                raise ValueError(f"checkpoint_id={cid!r}: model {name!r} does not match the watched model "
                                 f"(missing {missing[:5]}, unexpected {unexpected[:5]}, shape changes "
                                 f"{sorted(shapes)[:5]})")
        for name, sd in payload["optimizers"].items():
            opt = exp.optimizers.get(name)
            if opt is None:
                log.warning("checkpoint %s: optimizer %r is not watched; skipped", cid, name)
                continue
            groups = opt.param_groups
            saved = sd.get("param_groups", [])
            if len(groups) != len(saved) or any(len(g["params"]) != len(s.get("params", []))
                                                for g, s in zip(groups, saved, strict=False)):
                raise ValueError(f"checkpoint_id={cid!r}: optimizer {name!r} parameter groups do not match "
                                 "the watched optimizer")
        for name in exp.models:
            if name not in payload["models"]:
                log.warning("checkpoint %s has no state for model %r; left as is", cid, name)

    def _restore_hyperparameters(self, payload: Mapping[str, Any]) -> None:
        hp = self.experiment.hp
        if hp is None:
            return
        from weightslab.hyperparams import HyperParameterError, flatten

        saved = flatten(json.loads(payload.get("hyperparameters") or "{}"))
        current = hp.flat()
        changes = {k: v for k, v in saved.items() if k in current and current[k] != v}
        kept = sorted(k for k in changes if not restorable_key(k))
        if kept:
            log.info("checkpoint restore keeps the current value of %s (server, TLS, auth and secret settings "
                     "are never changed by a restore)", ", ".join(kept))
        changes = {k: v for k, v in changes.items() if restorable_key(k)}
        if not changes:
            return
        try:
            hp.request_many(changes)
        except HyperParameterError as exc:
            log.warning("checkpoint hyperparameters not restored: %s", exc)
            return
        hp.apply_pending()

    def _restore_data(self, data: Mapping[str, Any]) -> None:
        exp = self.experiment
        index = exp.table._index
        keys = list(zip(data["split"], data["sample_id"], strict=True))
        pos = [i for i, key in enumerate(keys) if key in index]
        if len(pos) < len(keys):
            log.warning("checkpoint data state: %d samples are not in the table; skipped", len(keys) - len(pos))
        sel = np.asarray(pos, dtype=np.int64)
        rows = np.asarray([index[keys[i]] for i in pos], dtype=np.int64)
        with exp.data_lock:
            table = exp.table
            table.set_discarded(rows, False)
            table.discarded[rows] = data["discarded"].numpy()[sel]
            saved_tags = data.get("tags", {})
            for name in set(table.tags) | set(saved_tags):
                values = saved_tags[name].numpy()[sel] if name in saved_tags else np.zeros(len(rows), dtype=bool)
                if name not in table.tags and not values.any():
                    continue
                table.set_tag(name, rows[values], True)
                table.set_tag(name, rows[~values], False)
            saved_cats = data.get("categories", {})
            for name in set(table.categories) | set(saved_cats):
                values = saved_cats.get(name)
                column = [values[i] for i in pos] if values is not None else [None] * len(rows)
                if name not in table.categories and all(v is None for v in column):
                    continue
                for value in set(column):
                    table.set_category(name, rows[np.asarray([v == value for v in column], dtype=bool)], value)
            relabelled = restore_checkpoint_state(table, exp.label_edits, data.get("labels"))
            table.version += 1
        persist = getattr(exp, "_persist_rows", None)
        if callable(persist):
            persist(rows)
        persist_label_rows(exp, relabelled)

    def _new_branch_name(self, base: str) -> str:
        exp = self.experiment
        with self._mlock:
            manifest = self._load()
            known = set(manifest["branches"]) | {str(e.get("branch")) for e in manifest["checkpoints"]}
        known |= set(exp.history.branches) | {str(exp.branch)}
        if base not in known:
            return base
        n = 1
        while f"{base}{BRANCH_SUFFIX}{n}" in known:
            n += 1
        return f"{base}{BRANCH_SUFFIX}{n}"

    # -- restart ------------------------------------------------------------
    def latest(self) -> dict[str, Any] | None:
        entries = self.list()
        return max(entries, key=lambda e: float(e.get("time", 0))) if entries else None

    def auto_load_latest(self, skip_previous_auto_load: bool | None = None) -> dict[str, Any] | None:
        """Resume a restarted script from the latest checkpoint (once); ``None`` when skipped/none.

        ``skip_previous_auto_load``: ``True`` starts fresh (default: the hyperparameter
        ``skip_previous_auto_load``, else ``False``). An incompatible checkpoint (changed model)
        is logged and skipped rather than stopping the script.
        """
        if self._auto_loaded:
            return None
        self._auto_loaded = True
        if skip_previous_auto_load is None:
            hp = self.experiment.hp
            skip_previous_auto_load = bool(hp.get(SKIP_AUTO_LOAD_KEY, False)) if hp is not None else False
        if skip_previous_auto_load:
            log.info("skip_previous_auto_load: not resuming from a previous checkpoint")
            return None
        latest = self.latest()
        if latest is None:
            return None
        if not self.experiment.models and not self.experiment.optimizers:
            log.warning("auto-load: no model or optimizer watched yet; checkpoint %s not loaded", latest["id"])
            return None
        try:
            return self.restore(checkpoint_id=str(latest["id"]), force=True, reason="auto_load")
        except (ValueError, RuntimeError) as exc:
            log.warning("auto-load of checkpoint %s failed, starting fresh: %s", latest["id"], exc)
            return None


def _closest_in_lineage(entries: list[dict[str, Any]], lineage: Mapping[str, Any], branch: str,
                        step: int | None) -> dict[str, Any] | None:
    """Closest checkpoint at or before ``step`` on ``branch``, else on its ancestors before the fork."""
    limit = step
    seen: set[str] = set()
    current: str | None = branch
    while current and current not in seen:
        seen.add(current)
        candidates = [e for e in entries if e.get("branch") == current and (limit is None or int(e["step"]) <= limit)]
        if candidates:
            return max(candidates, key=lambda e: (int(e["step"]), float(e.get("time", 0))))
        info = lineage.get(current)
        if not isinstance(info, Mapping):
            return None
        fork = info.get("parent_step")
        if isinstance(fork, int):
            limit = fork if limit is None else min(limit, fork)
        parent = info.get("parent")
        current = str(parent) if parent else None
    return None


def _require_torch() -> Any:
    torch = torch_or_none()
    if torch is None:
        raise RuntimeError("checkpoints need torch (pip install torch)")
    return torch


def attach(experiment: Experiment, **kwargs: Any) -> CheckpointManager:
    """Create the manager and set ``experiment.checkpoints`` (used by the API layer)."""
    manager = CheckpointManager(experiment, **kwargs)
    cast(Any, experiment).checkpoints = manager
    return manager


__all__ = ["BRANCH_SUFFIX", "CheckpointManager", "TrainingNotPaused", "attach", "branch_hash"]
