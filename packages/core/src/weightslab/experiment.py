"""The in-process experiment: sample table, history, control, hyperparameters, services.

Everything that reads or edits the experiment (SDK, gRPC, CLI, agent) goes through the
methods here; they take :attr:`Experiment.lock` for the state they touch.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from weightslab._torch import is_tensor, resolve_host, to_host_async, to_numpy
from weightslab.checkpoints import CheckpointManager, branch_hash
from weightslab.config import Config
from weightslab.control import TrainingControl, TrainingState
from weightslab.evaluation import EvaluationController
from weightslab.heap import WORTH_RELEASING, release_free_heap
from weightslab.history import InstanceHistory, SignalHistory
from weightslab.hp_checks import check_training_objects
from weightslab.hyperparams import HyperParameters
from weightslab.labels import reapply as reapply_label_edits
from weightslab.labels import restore as restore_label_edits
from weightslab.lock import WeightsLabRLock, try_acquire_rlock
from weightslab.log import configure_logging, default_root_log_dir
from weightslab.recorder import BatchRecord, Recorder, SeenRecord, _per_sample
from weightslab.signals import DerivedSignal, SignalContext
from weightslab.store import MemorySampleStore, StoredRows, StoredState, StoreLockedError, root_dir_in_use
from weightslab.table import SampleTable, UnknownSamples, check_name, check_text, ids_to_list

log = logging.getLogger("weightslab.experiment")
_NOT_HASHED = frozenset({"checkpoint_every_n_steps", "skip_previous_auto_load"})
_PERSIST_ROWS = 1 << 16  # rows per store write of new rows: bounded temporaries in the store


class Experiment:
    def __init__(self, *, kwargs: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
                 pm: Any = None, name: str | None = None) -> None:
        from weightslab.plugins import get_plugin_manager

        self.pm = pm or get_plugin_manager()
        self._kwargs: dict[str, Any] = dict(kwargs or {})
        self._environ = environ
        self.config: Config = self._load_config()
        root = self.config["logging"].root_log_dir
        self.root_log_dir: Path = Path(root) if root is not None else default_root_log_dir()
        self.name = name or self.root_log_dir.parent.name or "experiment"
        self.lock = WeightsLabRLock()
        # Guards table/history mutation; separate from the main lock, which the training
        # step holds for the whole step.
        self.data_lock = WeightsLabRLock("weightslab_data_lock")
        self.recorder = Recorder(self)
        # split -> {id(ids): (ids, rows)}: the last few batches each watched loader yielded. The
        # entry holds the ids object alive, so its id() cannot be reused while it is cached.
        self._recent_batches: dict[str, dict[int, tuple[Any, np.ndarray]]] = {}
        self._recent_lock = threading.Lock()
        self.table = SampleTable()
        self.history = SignalHistory(before_read=lambda: self.recorder.drain())
        self.control = TrainingControl(on_resume=self._on_resume)
        self.hp: HyperParameters | None = None
        self.models: dict[str, Any] = {}
        self.optimizers: dict[str, Any] = {}
        self.loaders: dict[str, Any] = {}
        self.derived: list[DerivedSignal] = []
        self.instance_signals: dict[str, dict[tuple[str, str], dict[str, float]]] = {}
        self.instance_history = InstanceHistory()
        self.static_signals: dict[str, Callable[..., Any]] = {}  # @wl.signal without subscribe_to
        self.categorical_tags: dict[str, list[str]] = {}  # declared value sets (register_categorical_tag)
        self.services: dict[str, Any] = {}
        self.serve_options: dict[str, Any] = {}
        self.store: Any = MemorySampleStore()
        self.step = 0
        self.branch = ""
        self.started = False
        self.log_override: tuple[str, bool] | None = None  # wl.setup_logging(level, log_to_file)
        self.started_at = time.time()
        self._local = threading.local()
        self._warned: set[str] = set()
        self._step_times: list[float] = []
        self._last_step_end: float | None = None
        self._step_thread: threading.Thread | None = None  # the thread that ran the last step
        self._first_batch: float | None = None  # when a training loop fetched its first batch
        self._last_read: float | None = None  # when a query read the table (front ends)
        from weightslab.mislabel import MislabelTracker

        self.mislabel = MislabelTracker()
        from weightslab.labels import LabelEdits
        from weightslab.suggest import SuggestionTracker

        self._no_original: np.ndarray | None = None  # frame()'s original_label before any correction
        self.label_edits = LabelEdits()  # corrected class labels (operations.labels), applied by loaders
        self.suggestions = SuggestionTracker()  # suggested_label from the training trajectory
        self.mislabel_rows: dict[str, int] = {}
        self.embeddings: Any = None  # EmbeddingIndex once a model is watched with embeddings=
        self.stored_embeddings: StoredState | None = None  # what the store held, until then
        self.eval_fns: dict[str, Callable[..., Any]] = {}
        self.signals: dict[str, Any] = {}  # watched losses/metrics by name (the default evaluator uses the loss)
        self.evaluation = EvaluationController(self)
        self.checkpoints = CheckpointManager(self)  # <root_log_dir>/checkpoints
        self._auto_load_pending = True
        from weightslab.distributed import coordinator_for

        # Under torch.distributed: rank 0 hosts the store and services, the others forward to it.
        self.coordinator = coordinator_for(self)

    # -- configuration and lifecycle ----------------------------------------
    def _load_config(self) -> Config:
        from weightslab.settings import load_config

        hp = getattr(self, "hp", None)
        hp_values = hp.flat() if hp is not None else None
        # Plugins validate (weightslab_configure: e.g. TLS files) when services start, not here:
        # recording samples needs no certificates.
        return load_config(kwargs=self._kwargs, config=hp_values, environ=self._environ, pm=self.pm,
                           validate=False)

    def reload_config(self, **kwargs: Any) -> Config:
        self._kwargs.update({k: v for k, v in kwargs.items() if v is not None})
        self.config = self._load_config()
        return self.config

    def set_root_log_dir(self, path: str | Path) -> None:
        """Choose the root log dir; allowed until the experiment has started writing there."""
        from weightslab.config.fields import expand_path

        new = expand_path(str(path))  # ~ and $VARS, exactly as the setting WEIGHTSLAB_ROOT_LOG_DIR
        if new == self.root_log_dir:
            return
        if self.started:
            log.warning("root_log_dir=%s ignored: the experiment already writes to %s", new, self.root_log_dir)
            return
        self._kwargs["root_log_dir"] = new
        self.config = self._load_config()
        self.root_log_dir = new

    def start(self) -> None:
        """Configure logging, open the store, reload what it holds, tell plugins."""
        if self.started:
            return
        self.started = True
        logging_cfg = self.config["logging"]
        # wl.setup_logging() called before the start wins over the configured level.
        level, to_file = self.log_override or (logging_cfg.log_level, logging_cfg.log_to_file)
        configure_logging(level, log_to_file=to_file, log_dir=self.root_log_dir)
        if self.coordinator is not None:
            self.coordinator.prefix_logs()
        # Only rank 0 of a distributed job writes the store (the other ranks forward their records).
        try:
            store = (self.pm.hook.weightslab_sample_store(experiment=self, config=self.config)
                     if self.is_main_rank else None)
        except StoreLockedError as exc:  # a second run on the same root log dir: one line, with the fix
            self.started = False
            raise StoreLockedError(root_dir_in_use(self.root_log_dir, exc.pid), pid=exc.pid) from None
        self.store = store if store is not None else MemorySampleStore()
        self._restore(self.store.load())
        self.branch = self.compute_hash()
        self.recorder.start()
        # Runs before the store's own exit handler (atexit is last-in, first-out): queued
        # records reach the store before it closes.
        atexit.register(self._at_exit)
        self.pm.hook.weightslab_experiment_started(experiment=self)
        log.info("experiment %s started (root log dir %s, branch %s)", self.name, self.root_log_dir, self.branch)

    @property
    def is_main_rank(self) -> bool:
        """True in a single process and on rank 0 of a distributed job (the one that hosts everything)."""
        return self.coordinator is None or self.coordinator.is_main

    def _at_exit(self) -> None:
        try:
            self.recorder.stop()
            self.store.flush()
        except Exception:
            log.exception("flushing at interpreter exit failed")

    def shutdown(self) -> None:
        for name, handle in list(self.services.items()):
            stop = getattr(handle, "stop", None)
            if callable(stop):
                try:
                    stop()
                except Exception:
                    log.exception("stopping service %s failed", name)
        self.services.clear()
        self.control.close()  # a loop paused at its boundary must not wait forever
        if self.coordinator is not None:
            self.coordinator.close()  # rank 0: its own records not gathered yet are stored, not lost
        self.recorder.stop()
        atexit.unregister(self._at_exit)
        if self.hp is not None:
            self.hp.stop()
        self.pm.hook.weightslab_shutdown(experiment=self)
        try:
            self.store.flush()
            self.store.close()
        except Exception:
            log.exception("closing the sample store failed")

    def _restore(self, state: StoredState) -> None:
        rows = state.rows
        if rows is not None and len(rows.sample_id):
            with self.data_lock:
                for split in np.unique(rows.split.astype(str)):
                    mask = rows.split.astype(str) == split
                    idx = self.table.rows(str(split), [str(s) for s in rows.sample_id[mask]])
                    if rows.label.dtype.kind == "f":
                        self.table.set_numeric("label", idx, rows.label[mask])
                    self.table.set_discarded(idx, False)
                    self.table.discarded[idx] = rows.discarded[mask]
                    for tag, col in rows.tags.items():
                        self.table.set_tag(tag, idx[col[mask]], True)
                    for cat, col in rows.categories.items():
                        for row, value in zip(idx.tolist(), col[mask].tolist(), strict=True):
                            if value is not None:
                                self.table.set_category(cat, np.asarray([row]), str(value))
                    restore_label_edits(self.table, self.label_edits, idx, rows.metadata, mask)
        for signal, hist in state.history.items():
            for split in np.unique(hist.split.astype(str)):
                mask = hist.split.astype(str) == split
                idx = self.table.rows(str(split), [str(s) for s in hist.sample_id[mask]])
                for branch in np.unique(hist.branch[mask].astype(str)):
                    bmask = hist.branch[mask].astype(str) == branch
                    self.history.append(signal, idx[bmask], hist.step[mask][bmask], hist.value[mask][bmask],
                                        str(branch))
                order = np.argsort(hist.step[mask], kind="stable")
                self.table.set_signal(signal, idx[order], hist.value[mask][order])
        for (signal, split, branch), curve in state.curves.items():
            for step, value in zip(curve.step.tolist(), curve.value.tolist(), strict=True):
                self.history.append_curve(signal, split, branch, step, value)
            if len(curve.step):
                self.step = max(self.step, int(curve.step.max()))
        if state.predictions:
            from weightslab.embeddings import restore_embeddings

            restore_embeddings(self, state)
        if state.rows is not None or state.history:
            log.info("%s", self._reload_summary(len(state.history)))

    def _reload_summary(self, signals: int) -> str:
        """One line saying that an earlier run's edits came back, how many, from where, and how to start fresh."""
        n = self.table.n
        with self.data_lock:
            discarded = int(self.table.discarded[:n].sum())
            tagged = np.zeros(n, dtype=bool)
            for col in self.table.tags.values():
                tagged |= col[:n]
            for cat in self.table.categories.values():
                tagged |= np.asarray([v is not None for v in cat[:n].tolist()], dtype=bool)
            tag_names = len(self.table.tags) + len(self.table.categories)
        return (f"reloaded an earlier run from root log dir {self.root_log_dir}: {n} samples, {discarded} discarded, "
                f"{int(tagged.sum())} tagged ({tag_names} tags), {signals} signals; these edits apply to this run "
                "too (another folder starts fresh: WEIGHTSLAB_ROOT_LOG_DIR or root_log_dir=)")

    # -- registration (watch_or_edit) ---------------------------------------
    def register_samples(self, split: str, ids: Sequence[str], labels: Any = None) -> np.ndarray:
        with self.data_lock:
            numbered = getattr(ids, "numbers", None)  # a loader's 0..n-1: registered as one array
            rows = self.table.int_rows(split, numbered) if numbered is not None else self.table.rows(split, ids)
            if labels is not None:
                labels = _labels_array(labels)
                if len(labels) == len(rows):
                    self.table.set_labels(rows, labels)
                    reapply_label_edits(self.table, self.label_edits, rows)  # corrections win over the dataset
                else:
                    log.warning("%s: %d labels for %d samples; labels ignored", split, len(labels), len(rows))
            self._persist_rows(rows)
            # Per-row state sized now (setup), not by growth during the first training steps.
            self.mislabel.reserve(self.table.n)
            self.suggestions.reserve(self.table.n)
        if len(rows) >= WORTH_RELEASING:  # megabytes of registration temporaries: their pages back to the OS
            release_free_heap()
        return rows

    def register_hyperparameters(self, hp: HyperParameters) -> None:
        self.hp = hp
        hp.add_applier(self._apply_hyperparameter)
        hp.add_validator(self._validate_config_key)
        hp.add_validator(lambda key, value: check_training_objects(self, key, value))  # optimizer/loader rules
        hp.add_listener(self._reload_config_keys)
        self.config = self._load_config()
        if not self.is_main_rank:
            hp.yaml_path = None  # rank 0 owns the file; edits reach this rank at step boundaries
        elif self.config["experiment"].enable_hp_sync:
            hp.start_watching()
        elif hp.yaml_path is not None and not hp.yaml_path.exists():
            hp._write_yaml()

    def _config_keys(self) -> set[str]:
        return {entry.setting.config_key for entry in self.config.entries.values() if entry.setting.config_key}

    def _validate_config_key(self, key: str, value: Any) -> None:
        """A hyperparameter that is also a setting (``instance_aggregation``...) must be a valid setting."""
        if key not in self._config_keys() or self.hp is None:
            return
        from weightslab.config import ConfigError
        from weightslab.hyperparams import HyperParameterError
        from weightslab.settings import load_config

        try:
            load_config(kwargs=self._kwargs, config={**self.hp.flat(), key: value}, environ=self._environ,
                        pm=self.pm, validate=False)
        except ConfigError as exc:
            raise HyperParameterError(str(exc)) from None

    def _reload_config_keys(self, changes: dict[str, Any]) -> None:
        """Applied edits of setting keys take effect now (e.g. folding uses the new instance_aggregation)."""
        if any(key in self._config_keys() for key in changes):
            self.config = self._load_config()

    def _apply_hyperparameter(self, key: str, value: Any) -> None:
        leaf = key.rsplit(".", 1)[-1]
        if leaf in ("lr", "learning_rate"):
            for opt in self.optimizers.values():
                for group in opt.param_groups:
                    group["lr"] = float(value)
        elif leaf == "batch_size":
            prefix = key.rsplit(".", 1)[0] if "." in key else ""
            for name, loader in self.loaders.items():
                if prefix in ("", "data", name) and (prefix == name or loader.is_training):
                    loader.batch_size = int(value)

    # -- the training loop --------------------------------------------------
    @property
    def current_split(self) -> str:
        return getattr(self._local, "split", "train")

    @current_split.setter
    def current_split(self, split: str) -> None:
        self._local.split = split

    def step_boundary(self) -> None:
        """Before a training step: block while paused, then apply pending edits."""
        if self._auto_load_pending:  # first training step: every watched object is registered by now
            self._auto_load_pending = False
            if self.is_main_rank:  # other ranks take rank 0's restored state at the boundary below
                self.checkpoints.auto_load_latest()
        if self.coordinator is not None:
            self.coordinator.step_boundary()  # rank 0 waits while paused and decides; every rank applies
            return
        if self.control.state is not TrainingState.RUNNING:
            # A guard around the whole epoch holds the main lock here: give it up while paused so
            # edits, evaluation and checkpoints from other threads can take it.
            depth = self.lock.release_all()
            try:
                self.control.step_boundary()
            finally:
                self.lock.reacquire(depth)
        if self.hp is not None and self.hp.new_pending.is_set():
            self.hp.apply_pending()

    def batch_started(self, loader: Any, rows: np.ndarray, ids: Any) -> None:
        self.current_split = loader.split
        with self._recent_lock:  # loaders may be iterated from several threads
            recent = self._recent_batches.setdefault(loader.split, {})
            recent[id(ids)] = (ids, rows)
            self._local.batch = rows  # what the embedding hook attributes the next forward to
            if len(recent) > 4:  # evict this loader's oldest batch only (nested loops keep theirs)
                del recent[next(iter(recent))]
        if loader.is_training:
            if self._first_batch is None:
                self._first_batch = time.monotonic()
            if self.coordinator is not None:
                self.coordinator.buffer_seen(rows, self.step)
            else:
                self.recorder.submit(SeenRecord(rows, self.step))

    def is_training_split(self, split: str) -> bool:
        loader = self.loaders.get(split)
        return loader.is_training if loader is not None else split == "train"

    def step_end(self) -> None:
        """After an optimizer step (or a guarded training step without a watched optimizer)."""
        now = time.monotonic()
        if self._last_step_end is not None:
            self._step_times.append(now - self._last_step_end)
            del self._step_times[:-100]
        self._last_step_end = now
        self._step_thread = threading.current_thread()
        self.step += 1
        self.control.step_done()
        if self.is_main_rank:
            self.checkpoints.on_step_end(self.step)
        self.pm.hook.weightslab_step_end(experiment=self, step=self.step)

    def steps_per_second(self) -> float:
        if not self._step_times:
            return 0.0
        return 1.0 / max(float(np.median(self._step_times)), 1e-9)

    def mark_read(self) -> None:
        """A front end is reading the table (a query): see :meth:`last_read_age`."""
        self._last_read = time.monotonic()

    def last_read_age(self) -> float | None:
        """Seconds since a query read the table (:meth:`frame`, :meth:`mark_read`), None before:
        background work such as the thumbnail overview gives way to a person querying (status polls
        do not count: a Studio polls it all the time)."""
        return None if self._last_read is None else time.monotonic() - self._last_read

    def first_batch_age(self) -> float | None:
        """Seconds since a training loop fetched its first batch (None before): a loop that is starting,
        before :meth:`activity` has a step to count from."""
        return None if self._first_batch is None else time.monotonic() - self._first_batch

    def activity(self) -> tuple[str, float | None]:
        """``(state, seconds since the last step)``: the control state, or, once steps were made,
        ``finished`` (the thread that ran them has exited) / ``idle`` (no step for 5 s or 10 typical steps)."""
        state = self.control.state.value
        last = self._last_step_end
        age = None if last is None else max(0.0, time.monotonic() - last)
        if state != "running" or age is None:  # paused/evaluating, or no step yet (the loop starting)
            return state, age
        thread = self._step_thread
        if thread is not None and not thread.is_alive():
            return "finished", age
        typical = float(np.median(self._step_times)) if self._step_times else 0.0
        if age > max(5.0, 10.0 * typical):
            return "idle", age
        return "running", age

    def _on_resume(self) -> None:
        new = self.compute_hash()
        if self.branch and new == branch_hash(self.branch):
            return  # nothing edited: keep the branch (a restored "<hash>-rN" branch keeps its name)
        if self.branch and new != self.branch:
            log.info("resuming after an edit: new branch %s (was %s)", new, self.branch)
        self.branch = new

    def compute_hash(self) -> str:
        """Experiment hash: hyperparameters + data mask + model structure."""
        digest = hashlib.sha256()
        if self.hp is not None:
            # Bookkeeping keys do not change what is trained, so they do not start a branch.
            values = {k: v for k, v in self.hp.flat().items() if k not in _NOT_HASHED}
            digest.update(json.dumps(values, sort_keys=True, default=str).encode())
        with self.data_lock:  # the data mask: which samples are discarded (not how many are known)
            gone = np.flatnonzero(self.table.discarded[: self.table.n])
            keys = sorted(f"{self.table.split[r]}/{self.table.sample_id[r]}" for r in gone.tolist())
        digest.update("\n".join(keys).encode())
        with self.data_lock:  # corrected labels are a data edit too (nothing added when there are none)
            digest.update(self.label_edits.hash_text(self.table).encode())
        for name, model in sorted(self.models.items()):
            digest.update(name.encode())
            digest.update(repr(model).encode())
        return digest.hexdigest()[:12]

    # -- recording ----------------------------------------------------------
    def warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def record(self, name: str, values: Any, batch_ids: Any, *, split: str | None = None, preds: Any = None,
               targets: Any = None, logits: Any = None, log_curve: bool = True, per_sample: bool = True,
               per_instance: bool = False, annotation_ids: Any = None, is_loss: bool = False,
               derived: bool = True, step: int | None = None) -> None:
        """Record per-sample values of signal ``name`` for the samples ``batch_ids``.

        Validation happens here (errors reach the caller); the table/history update is queued
        and folded in by the recorder thread, so the training step only pays for a host copy.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"signal name {name!r}: expected non-empty text")
        check_text(name, "signal name")
        if not self.started:
            self.start()
        cached = self._loader_batch(batch_ids)
        if split is None and cached is not None:
            split = cached[1]  # ids straight from a watched loader name their split
        split = split or self.current_split
        at_step = self.step if step is None else int(step)
        if self.coordinator is not None and not getattr(self.coordinator.replaying, "active", False):
            self._forward(name, values, batch_ids, cached, split, at_step, preds=preds, targets=targets,
                          logits=logits, options={"log_curve": log_curve, "per_sample": per_sample,
                                                  "per_instance": per_instance, "is_loss": is_loss,
                                                  "derived": derived}, annotation_ids=annotation_ids)
            return
        host = to_host_async(values)
        shape = host.shape
        if len(shape) == 0:
            vals = np.asarray(resolve_host(host), dtype=np.float64)
            self.warn_once(f"reduced:{name}", "signal %r returned a scalar: use reduction='none' to record "
                           "per-sample values; only the curve is recorded", name)
            if log_curve and np.isfinite(vals):
                self.history.append_curve(name, split, self.branch, at_step, float(vals))
                self.store.append_curve(name, split, self.branch, at_step, float(vals))
            return
        rows = None
        if per_instance:
            vals = _per_sample(resolve_host(host))
            ids, vals = self._fold_instances(name, split, ids_to_list(batch_ids), vals, annotation_ids, at_step)
            batch_ids, host, shape = ids, vals, vals.shape
            preds = targets = logits = None
        else:
            rows = cached[0] if cached is not None and cached[1] == split else None
            if rows is None:  # snapshot: the caller may reuse a mutable ids buffer
                batch_ids = _snapshot_ids(batch_ids)
        n_ids = len(rows) if rows is not None else len(batch_ids)
        if shape[0] != n_ids:
            raise ValueError(f"batch_ids has {n_ids} ids but signal {name!r} has {shape[0]} values: "
                             "expected one value per id")
        logits_host = None
        if logits is not None and is_tensor(logits) and logits.ndim == 2 and len(logits) == n_ids:
            logits_host = to_host_async(logits)
        self.recorder.submit(BatchRecord(
            name, split, at_step, self.branch, host, rows, batch_ids if rows is None else None,
            preds=_host(preds, n_ids), targets=_host(targets, n_ids), logits=logits_host,
            log_curve=log_curve, is_loss=is_loss, derived=derived))

    def _forward(self, name: str, values: Any, batch_ids: Any, cached: Any, split: str, step: int, *,
                 options: dict[str, Any], annotation_ids: Any, **arrays: Any) -> None:
        """A distributed job: the record goes to rank 0 (joined with the other ranks' at the next sync)."""
        assert self.coordinator is not None
        host = {"values": to_numpy(values), **{k: None if v is None else to_numpy(v) for k, v in arrays.items()}}
        if host["values"].ndim == 0:
            ids: list[str] = []
        elif cached is not None and cached[1] == split:
            ids = [str(s) for s in self.table.sample_id[cached[0]]]
        else:
            ids = ids_to_list(batch_ids)
        if annotation_ids is not None:
            options = {**options, "annotation_ids": ids_to_list(annotation_ids)}
        self.coordinator.buffer_record(name, split, step, host, ids, options)

    def record_curve_point(self, name: str, value: float, *, split: str | None = None,
                           step: int | None = None) -> None:
        """Append one point to the curve ``name`` (e.g. a metric's ``compute()``), no per-sample values."""
        if not self.started:
            self.start()
        value = float(value)
        if not np.isfinite(value):
            return
        split = split or self.current_split
        at = self.step if step is None else int(step)
        self.history.append_curve(name, split, self.branch, at, value)
        self.store.append_curve(name, split, self.branch, at, value)

    def _loader_batch(self, batch_ids: Any) -> tuple[np.ndarray, str] | None:
        """``(rows, split)`` of a batch a watched loader recently yielded (same ids object), else None."""
        key = id(batch_ids)
        with self._recent_lock:
            for split, recent in self._recent_batches.items():
                cached = recent.get(key)
                if cached is not None and cached[0] is batch_ids:
                    return cached[1], split
        return None

    def _fold_instances(self, name: str, split: str, ids: list[str], vals: np.ndarray,
                        annotation_ids: Any, step: int | None = None) -> tuple[list[str], np.ndarray]:
        if len(vals) != len(ids):
            raise ValueError(f"per_instance signal {name!r}: {len(ids)} batch_ids (one per instance) but "
                             f"{len(vals)} values")
        ann = ids_to_list(annotation_ids) if annotation_ids is not None else [str(i) for i in range(len(ids))]
        if len(ann) != len(ids):
            raise ValueError(f"annotation_ids has {len(ann)} entries, expected {len(ids)} (one per instance)")
        how = self.config["experiment"].instance_aggregation
        unique, inverse = np.unique(np.asarray(ids, dtype=object), return_inverse=True)
        inverse = inverse.reshape(-1)
        finite = ~np.isnan(vals)
        counts = np.bincount(inverse, weights=finite, minlength=len(unique))
        if how == "max":  # vectorised: O(instances), not O(samples x instances) on the training thread
            folded = np.full(len(unique), -np.inf)
            np.fmax.at(folded, inverse, vals)
        else:
            sums = np.bincount(inverse, weights=np.where(finite, vals, 0.0), minlength=len(unique))
            folded = sums / np.maximum(counts, 1)
        folded[counts == 0] = np.nan  # every instance NaN (as nanmax/nanmean)
        with self.data_lock:
            breakdown = self.instance_signals.setdefault(name, {})
            for sid, aid, value in zip(ids, ann, vals.tolist(), strict=True):
                breakdown.setdefault((split, sid), {})[aid] = value
        self.instance_history.append(name, split, ids, ann, self.step if step is None else step, vals.tolist(),
                                     self.branch)
        return [str(u) for u in unique], folded

    def prepare_derived(self, derived: DerivedSignal, record: Any, rows: np.ndarray,
                        values: np.ndarray) -> tuple[DerivedSignal, Any, np.ndarray, SignalContext]:
        """Called by the recorder (holding the data lock): snapshot what the derived signal reads."""
        ids = [str(s) for s in self.table.sample_id[rows]]
        history: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if derived.include_history:
            h_rows, h_steps, h_values, _ = self.history.arrays(derived.subscribe_to, sync=False)
            for sid, row in zip(ids, rows.tolist(), strict=True):
                mask = h_rows == row
                history[sid] = (h_steps[mask], h_values[mask])
        ctx = SignalContext(derived.name, record.step, record.split, ids, values.copy(), derived.subscribe_to,
                            history)
        return derived, record, rows, ctx

    def run_derived(self, job: tuple[DerivedSignal, Any, np.ndarray, SignalContext]) -> Any:
        """Run user code for a derived signal (no WeightsLab lock held); returns a record or None."""
        derived, record, rows, ctx = job
        try:
            out = derived.fn(ctx)
        except Exception:
            log.exception("derived signal %r failed at step %d", derived.name, record.step)
            return None
        if out is None:
            return None
        vals = to_numpy(out).astype(np.float64, copy=False).reshape(-1)
        if len(vals) != len(rows):
            self.warn_once(f"derived:{derived.name}", "derived signal %r returned %d values for %d samples; "
                           "ignored", derived.name, len(vals), len(rows))
            return None
        return BatchRecord(derived.name, record.split, record.step, record.branch, vals, rows, None,
                           log_curve=derived.log, derived=True, chain=(*record.chain, derived.name))

    def _persist_rows(self, rows: np.ndarray) -> None:
        if not getattr(self.store, "persistent", False) or len(rows) == 0:
            return
        t = self.table
        rows = np.asarray(rows, dtype=np.int64)
        label = t.numeric.get("label")
        for start in range(0, len(rows), _PERSIST_ROWS):  # a million new rows: the store codes a slice at a time
            part = rows[start:start + _PERSIST_ROWS]  # indexing by an index array copies: no second copy
            codes = t.split_code[part]
            one = len(codes) and bool((codes == codes[0]).all())  # a loader's rows: one split, queued once
            self.store.update_rows(StoredRows(
                # one split: a read-only view of one name (stride 0), not a pointer per row
                split=np.broadcast_to(np.array(t.split_names[codes[0]], dtype=object), len(part)) if one
                else t.split[part],
                sample_id=t.store_ids(part),  # int64 when decimal: coded vectorised
                label=label[part].astype(np.float64) if label is not None else np.full(len(part), np.nan),
                discarded=t.discarded[part],
                tags={k: v[part] for k, v in t.tags.items()},
                categories={k: v[part] for k, v in t.categories.items()},
            ))

    # -- reads --------------------------------------------------------------
    def frame(self) -> Any:
        """Snapshot of the whole table, with the mislabel columns, for queries."""
        from weightslab.query.frame import DeferredColumn

        self.mark_read()
        self.recorder.drain()
        with self.data_lock:
            frame = self.table.frame()
            n = self.table.n
            key = (n, self.recorder.loss_updates, self.label_edits.version)
            if key != frame.derived_key:  # new losses or corrections since this frame's columns
                self._defer_derived(frame, n)
                frame.derived_key = key
            if self.embeddings is not None:
                frame.columns.update(self.embeddings.columns(n))
            if "label" in frame.columns and "original_label" not in frame.columns:
                # queryable before the first correction (`original_label is not null` lists none),
                # made only when a query reads it
                frame.columns.defer("original_label", DeferredColumn(lambda: self._all_nan(n),
                                                                     lambda rows: np.full(len(rows), np.nan)))
        return frame

    def _all_nan(self, n: int) -> np.ndarray:
        """One read-only all-NaN column per table size, not a new 8 bytes a row per read."""
        if self._no_original is None or len(self._no_original) != n:
            self._no_original = np.full(n, np.nan)
            self._no_original.flags.writeable = False
        return self._no_original

    def _defer_derived(self, frame: Any, n: int) -> None:
        """The mislabel and suggestion columns, each computed when a query first reads it (then kept
        up to date by its tracker, row by row as losses arrive); a page reads only its rows."""
        from weightslab.query.frame import DeferredColumn
        from weightslab.suggest import COLUMN_NAMES as SUGGESTION_COLUMNS

        mislabel, suggestions, table, version = self.mislabel, self.suggestions, self.table, self.label_edits.version

        def mislabel_column(name: str) -> DeferredColumn:
            def whole() -> np.ndarray:
                return mislabel.live_columns(n, (name,))[name]

            def at(rows: np.ndarray) -> np.ndarray:
                return mislabel.columns_at(rows, (name,))[name]
            return DeferredColumn(whole, at)

        def suggestion_column(name: str) -> DeferredColumn:
            def whole() -> np.ndarray:
                return suggestions.cached_columns(n, table.numeric.get("label"), version, (name,))[name]

            def at(rows: np.ndarray) -> np.ndarray:
                return suggestions.columns_at(rows, table.numeric.get("label"), (name,))[name]
            return DeferredColumn(whole, at)

        for name in mislabel.COLUMN_NAMES:
            frame.columns.defer(name, mislabel_column(name))
        for name in SUGGESTION_COLUMNS:
            frame.columns.defer(name, suggestion_column(name))

    def status(self, *, lock_timeout: float | None = None) -> dict[str, Any]:
        """The one status computation (every front end reads it through ``operations.status``);
        ``lock_timeout``: wait at most that long for the table lock (``LockTimeout``)."""
        self.recorder.drain()
        guard = try_acquire_rlock(self.data_lock, lock_timeout) if lock_timeout is not None else self.data_lock
        with guard:
            n = self.table.n
            discarded = int(np.count_nonzero(self.table.discarded[:n]))
            seen = int(self.table.seen_count[:n].sum(dtype=np.float64))  # sample visits so far (float32 counts)
            splits = self.table.splits()
        latest = {}
        for signal in self.history.signals():
            point = self.history.last_point(signal)
            if point is not None:
                latest[signal] = point.value
        state, age = self.activity()
        return {
            "name": self.name, "state": state, "step": self.step, "branch": self.branch,
            "samples": n, "active": n - discarded, "discarded": discarded, "samples_seen": seen,
            "splits": splits, "signals": latest,
            "steps_per_second": self.steps_per_second() if state == "running" else 0.0,
            "seconds_since_last_step": None if age is None else round(age, 1),
            "steps_left": self.control.steps_left, "root_log_dir": str(self.root_log_dir),
            "waiting": self.control.waiting,
            "data_quality": self.embeddings.status() if self.embeddings is not None else None,
        }

    # -- samples and previews ----------------------------------------------
    def sample_keys(self, limit: int | None = None) -> list[tuple[str, str]]:
        """``(split, sample_id)`` of watched datasets, training splits first."""
        keys: list[tuple[str, str]] = []
        loaders = sorted(self.loaders.values(), key=lambda ld: not ld.is_training)
        for loader in loaders:
            for sid in loader.ids:
                if limit is not None and len(keys) >= limit:
                    return keys
                keys.append((loader.split, sid))
        return keys

    def load_sample(self, split: str, sample_id: str) -> Any:
        """The dataset item of one sample (through the loader's ``preview_fn`` when given)."""
        loader = self.loaders.get(split)
        if loader is None:
            raise ValueError(f"split={split!r}: no watched dataset; known: {', '.join(sorted(self.loaders))}")
        index = loader.index_of(str(sample_id))
        item = loader.item(index)
        return loader.preview_fn(item) if loader.preview_fn is not None else item

    def preview(self, split: str, sample_id: str, size: int | None = None) -> tuple[bytes, str]:
        """Thumbnail ``(bytes, mime)``: the preview cache when serving, else the preview hook."""
        service = self.services.get("previews")
        if service is not None:
            return tuple(service.get((split, str(sample_id)), size))
        result = self.pm.hook.weightslab_preview(sample=self.load_sample(split, sample_id), size=size or 0,
                                                  config=self.config)
        if result is None:
            raise ValueError(f"sample {split}/{sample_id} cannot be rendered as an image "
                             "(install weightslab[data-cache] or pass preview_fn= to the data flag)")
        return tuple(result)

    # -- edits (used by SDK, gRPC, CLI, agent alike) -----------------------
    def resolve_rows(self, ids: Sequence[Any] | None = None, *, split: str | None = None,
                     query: Any = None) -> np.ndarray:
        """Rows named by ``ids`` (in ``split`` or any split) or matched by a query filter/text."""
        if (ids is None) == (query is None):
            raise ValueError("give exactly one of ids or query")
        if ids is not None:
            id_list = ids_to_list(ids)
            self.recorder.drain()
            with self.data_lock:
                return self.table.find(id_list, split)
        from weightslab.operations.edits import rows_of_query

        # the full query (filter, ``top N by col``), resolved as every front end resolves it
        return rows_of_query(self, query, split or "")

    def edit(self, action: str, *, ids: Sequence[Any] | None = None, query: Any = None,
             split: str | None = None, tag: str | None = None, value: str | None = None,
             lock_timeout: float | None = None, rows: np.ndarray | None = None) -> dict[str, Any]:
        """Apply ``tag|untag|set_category|discard|restore``; idempotent. Returns matched/changed counts."""
        actions = ("tag", "untag", "set_category", "clear_category", "discard", "restore")
        if action not in actions:
            raise ValueError(f"action={action!r}: expected one of {', '.join(actions)}")
        if action in ("tag", "untag", "set_category", "clear_category") and not tag:
            raise ValueError(f"action {action!r} needs a tag name")
        if action == "set_category" and (value is None or value == ""):
            raise ValueError("action 'set_category' needs a value")
        if tag is not None and action not in ("discard", "restore"):
            # Every transport (SDK, gRPC, CLI, agent) ends here: refuse NUL/control characters
            # before anything reaches the table or the store.
            check_name(str(tag), "categorical tag" if "category" in action else "tag")
        if action == "set_category":
            check_text(str(value), f"categorical tag {tag!r} value")
        if not self.started:
            self.start()
        if rows is None:
            rows = self.resolve_rows(ids, split=split, query=query)
        else:  # rows already resolved by the caller (e.g. on its own query snapshot)
            rows = np.asarray(rows, dtype=np.int64)
            if len(rows) and (rows.min() < 0 or rows.max() >= self.table.n):
                raise ValueError(f"rows out of range 0..{self.table.n - 1}")
        guard = try_acquire_rlock(self.lock, lock_timeout) if lock_timeout is not None else self.lock
        max_tags = self.config["experiment"].max_tags
        with guard, self.data_lock:
            if action == "tag":
                changed = self.table.set_tag(str(tag), rows, True, max_tags=max_tags)
            elif action == "untag":
                changed = self.table.set_tag(str(tag), rows, False) if tag in self.table.tags else rows[:0]
            elif action == "set_category":
                changed = self.table.set_category(str(tag), rows, str(value), max_tags=max_tags)
            elif action == "clear_category":
                changed = self.table.set_category(str(tag), rows, None) if tag in self.table.categories else rows[:0]
            elif action == "discard":
                changed = self.table.set_discarded(rows, True)
            else:
                changed = self.table.set_discarded(rows, False)
            self._persist_rows(changed)
        return {"matched": int(len(rows)), "changed": int(len(changed)),
                "sample_ids": [str(s) for s in self.table.sample_id[rows[:1000]]]}

    # -- hyperparameters ----------------------------------------------------
    def hyperparameters(self) -> dict[str, Any]:
        if self.hp is None:
            return {"applied": {}, "pending": {}}
        if not self.config["experiment"].enable_hp_sync:
            self.hp.check_file()  # on-demand read when the per-step sync is off
        return {"applied": self.hp.flat(), "pending": self.hp.pending(), "rejected": self.hp.rejected()}

    def set_hyperparameter(self, key: str, value: Any) -> Any:
        if self.hp is None:
            raise ValueError("no hyperparameters are watched: call wl.watch_or_edit(hp_dict, flag='hp') first")
        return self.hp.request(key, value)


__all__ = ["Experiment", "TrainingState", "UnknownSamples"]


def _snapshot_ids(ids: Any) -> Any:
    """A private copy of batch ids, resolved to rows later by the recorder (O(batch), no lock)."""
    if is_tensor(ids):
        return to_host_async(ids)
    if isinstance(ids, np.ndarray):
        return ids.copy()
    if isinstance(ids, (str, bytes, int)):
        return ids_to_list(ids)  # raises the usual error here, in the caller's thread
    return list(ids)


def _labels_array(labels: Any) -> np.ndarray:
    """Labels as an array; ragged (e.g. detection) or mixed labels become an object array."""
    try:
        return np.asarray(to_numpy(labels))
    except ValueError:
        out = np.empty(len(labels), dtype=object)
        for i, label in enumerate(labels):
            out[i] = to_numpy(label) if is_tensor(label) else label
        return out


def _host(value: Any, n: int) -> Any:
    if value is None:
        return None
    out = to_host_async(value)
    return out if len(out.shape) >= 1 and out.shape[0] == n else None

