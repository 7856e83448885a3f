"""Multi-process training under ``torch.distributed`` (DDP, ``torchrun``): one experiment, rank 0 hosts it.

Rank 0 opens the store, the audit log and every service; the other ranks open no port and write
no file. Everything travels over the job's own process group (a gloo group made for WeightsLab,
so it also works beside NCCL), as tensors of JSON text and raw numbers — never pickled objects:

- **Records**: every rank buffers its per-sample records; every ``WL_DISTRIBUTED_SYNC_EVERY``
  steps (and at the end of each training epoch) rank 0 gathers them, joins the pieces of one
  step (same signal, split, step) into one batch and records it — so the table, the curves and
  ``suspected_mislabel`` are those of a single process that saw the global batch.
- **Control** at every training step boundary: rank 0 waits while paused/evaluating (sending a
  heartbeat every second so no rank times out in a collective), then broadcasts its decision —
  hyperparameter changes, discards, corrected labels, a restored checkpoint (its model and
  optimizer tensors, step and loader RNG) — and every rank applies it before the same step.
  Pause, resume, run-N steps and evaluation passes (run by rank 0 over the whole split while the
  others wait at the boundary) therefore act on all ranks at the same step.
- **Data**: a watched training loader shards each epoch like ``DistributedSampler`` (same
  permutation on every rank, padded to a multiple of the world size, ``rank::world`` slices), over
  the samples active at the epoch's start. A discard reaches every rank at the next step boundary
  and takes effect at the next epoch boundary, so every rank runs the same number of batches.

The process group must be initialised before the first ``wl`` call; ``torch`` is never imported
here unless the script already did.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from weightslab.experiment import Experiment

log = logging.getLogger("weightslab.distributed")

HEARTBEAT_SECONDS = 1.0
_BROADCAST_BYTES = 1024  # a step's decision fits (usually ~20 bytes): one collective per step  # while rank 0 is paused, the others hear from it this often
_ARRAY_FIELDS = ("values", "preds", "targets", "logits")
# How gloo and NCCL word a peer that crashed or stopped answering.
_PEER_GONE = ("closed by peer", "connection reset", "connection refused", "timed out",
              "nccl communicator was aborted", "broken pipe")


@dataclass(frozen=True)
class RankInfo:
    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def rank_info() -> RankInfo | None:
    """This process's rank when ``torch.distributed`` is initialised with more than one process."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    world = int(dist.get_world_size())
    return RankInfo(int(dist.get_rank()), world) if world > 1 else None


class RankDied(RuntimeError):
    """Another rank stopped answering inside a WeightsLab collective."""


class _RankFilter(logging.Filter):
    def __init__(self, rank: int, world: int) -> None:
        super().__init__()
        self.prefix = f"[rank {rank}/{world}] "

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and not record.msg.startswith(self.prefix):
            record.msg = self.prefix + record.msg
        return True


# -- wire format: JSON header + raw little-endian arrays, in one uint8 tensor ------------------------
def encode(header: Any, arrays: list[np.ndarray]) -> bytes:
    specs = [[a.dtype.str, list(a.shape)] for a in arrays]
    head = json.dumps({"h": header, "a": specs}, separators=(",", ":")).encode()
    parts = [len(head).to_bytes(8, "little"), head] + [np.ascontiguousarray(a).tobytes() for a in arrays]
    return b"".join(parts)


def decode(data: bytes) -> tuple[Any, list[np.ndarray]]:
    n = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8:8 + n].decode())
    pos = 8 + n
    arrays = []
    for dtype, shape in meta["a"]:
        dt = np.dtype(dtype)
        if dt.kind not in "biuf":  # numbers and booleans only: nothing that needs an object decoder
            raise ValueError(f"unexpected array dtype {dtype!r} from another rank")
        count = int(np.prod(shape)) if shape else 1
        size = count * dt.itemsize
        arrays.append(np.frombuffer(data, dtype=dt, count=count, offset=pos).reshape(shape).copy())
        pos += size
    return meta["h"], arrays


class Coordinator:
    """What ties the ranks of one job together (see the module docstring)."""

    def __init__(self, experiment: Experiment, info: RankInfo) -> None:
        import torch
        import torch.distributed as dist

        self.torch = torch
        self.dist = dist
        self.experiment = experiment
        self.rank = info.rank
        self.world_size = info.world_size
        self.is_main = info.is_main
        # A gloo group of our own: control and records stay on CPU whatever the job's backend is.
        self.group = dist.new_group(backend="gloo")
        self._buffer: list[tuple[dict[str, Any], list[np.ndarray]]] = []
        self._seen: list[tuple[int, np.ndarray]] = []
        self._in_flight: tuple[list[tuple[dict[str, Any], list[np.ndarray]]], list[tuple[int, np.ndarray]]] = ([], [])
        self._lock = threading.Lock()
        self._steps_since_sync = 0
        self.agreed_discarded = np.zeros(0, dtype=bool)  # discards every rank knows, by table row
        self._sent_hp: dict[str, Any] | None = None
        self._restores_seen = 0
        self._labels_sent = 0  # LabelEdits.version last broadcast
        self._boundary_at: int | None = None  # the step whose boundary was passed
        self.failed: str | None = None
        self.replaying = threading.local()
        self.prefix_logs()
        log.info("rank %d of %d: %s", self.rank, self.world_size,
                 "hosts the store and the services" if self.is_main else
                 "forwards its records to rank 0 (no store, no port)")

    def prefix_logs(self) -> None:
        """Every WeightsLab log line says which rank wrote it (call again after logging is reconfigured)."""
        for handler in logging.getLogger("weightslab").handlers:
            if not any(isinstance(f, _RankFilter) for f in handler.filters):
                handler.addFilter(_RankFilter(self.rank, self.world_size))

    # -- settings -------------------------------------------------------------------------------
    @property
    def sync_every(self) -> int:
        return int(self.experiment.config["experiment"].distributed_sync_every)

    # -- collectives (every rank calls each of them in the same order) ----------------------------
    def _collective(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except RuntimeError as exc:  # gloo: a peer closed its connection or timed out
            raise self._rank_died(what, exc) from exc

    def _rank_died(self, what: str, exc: BaseException) -> RankDied:
        """Log the failure once; rank 0 stores the records it holds (the others' since the last gather are lost)."""
        self.failed = f"{what}: {exc}"
        message = (f"a rank stopped answering during {what} ({str(exc).splitlines()[0][:200]}); "
                   "the other ranks cannot go on. "
                   + ("Records gathered so far are stored." if self.is_main else
                      "Rank 0 holds the store (if it is the one that died, what it committed opens)."))
        log.error(message)
        if self.is_main:
            try:
                self._record_own_buffer()
                self.experiment.recorder.drain()
                self.experiment.store.flush()
            except Exception:
                log.exception("storing rank 0's records after a rank failure failed")
        return RankDied(message)

    def step_failed(self, exc: BaseException) -> RankDied | None:
        """A guarded training step raised: when a peer died (the job's own collective, e.g. DDP's
        all-reduce, noticed first), the same clear report and stored records as our collectives."""
        text = str(exc).lower()
        if self.failed is None and isinstance(exc, RuntimeError) and any(p in text for p in _PEER_GONE):
            return self._rank_died("the training step", exc)
        return None

    def close(self) -> None:
        """Shutdown: rank 0's own records not gathered yet are stored (an epoch end gathers everything)."""
        if self.is_main and self.failed is None and (self._buffer or self._seen or self._in_flight[0]):
            log.warning("the run ended between two gathers: rank 0 stores its own records of the last "
                        "steps; the other ranks' records since the last gather are not included")
            try:
                self._record_own_buffer()
            except Exception:
                log.exception("storing rank 0's last records failed")

    def broadcast_json(self, value: Any = None) -> Any:
        """Rank 0's ``value`` on every rank: JSON text in a fixed-size uint8 tensor (its length in the
        first 8 bytes), so the usual small decision is one broadcast; a longer text takes a second."""
        torch, dist = self.torch, self.dist

        def run() -> Any:
            data = json.dumps(value, separators=(",", ":")).encode() if self.is_main else b""
            room = _BROADCAST_BYTES - 8
            buf = torch.zeros(_BROADCAST_BYTES, dtype=torch.uint8)
            if self.is_main:
                head = len(data).to_bytes(8, "little") + data[:room]
                buf[:len(head)] = torch.frombuffer(bytearray(head), dtype=torch.uint8)
            dist.broadcast(buf, 0, group=self.group)
            raw = bytes(buf.numpy())
            size = int.from_bytes(raw[:8], "little")
            payload = raw[8:8 + min(size, room)]
            if size > room:
                rest = (torch.frombuffer(bytearray(data[room:]), dtype=torch.uint8) if self.is_main
                        else torch.empty(size - room, dtype=torch.uint8))
                dist.broadcast(rest, 0, group=self.group)
                payload += bytes(rest.numpy())
            return json.loads(payload.decode())

        return self._collective("a control broadcast", run)

    def gather_bytes(self, data: bytes) -> list[bytes]:
        """Every rank's ``data`` on rank 0 (an empty list elsewhere)."""
        torch, dist = self.torch, self.dist

        def run() -> list[bytes]:
            size = torch.tensor([len(data)], dtype=torch.int64)
            sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(self.world_size)]
            dist.all_gather(sizes, size, group=self.group)
            longest = max(int(s.item()) for s in sizes)
            buf = torch.zeros(max(longest, 1), dtype=torch.uint8)
            if data:
                buf[:len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
            if self.is_main:
                out = [torch.empty_like(buf) for _ in range(self.world_size)]
                dist.gather(buf, out, dst=0, group=self.group)
                return [bytes(t[:int(s.item())].numpy()) for t, s in zip(out, sizes, strict=True)]
            dist.gather(buf, None, dst=0, group=self.group)
            return []

        return self._collective("gathering records", run)

    def agree_seed(self, seed: int | None) -> int:
        """One loader seed for every rank (rank 0's, drawn when the script gave none)."""
        if seed is None and self.is_main:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        agreed = self.broadcast_json(seed)
        if seed is not None and agreed != seed:
            log.warning("loader seed %s differs from rank 0's %s: rank 0's is used", seed, agreed)
        return int(agreed)

    def agree_dataset(self, loader_name: str, ids: Sequence[str]) -> None:
        """Every rank watches the same samples in the same order (records, discards and labels
        travel as table rows): compared on all ranks at once, so all of them stop with one error."""
        torch, dist = self.torch, self.dist
        digest = hashlib.blake2b("\x00".join(ids).encode(), digest_size=8).digest()
        mine = torch.tensor([len(ids), int.from_bytes(digest, "little", signed=True)], dtype=torch.int64)
        every = [torch.zeros(2, dtype=torch.int64) for _ in range(self.world_size)]
        self._collective("comparing the watched datasets",
                         lambda: dist.all_gather(every, mine, group=self.group))
        seen = [(int(t[0]), int(t[1])) for t in every]
        if len(set(seen)) > 1:
            listed = ", ".join(f"rank {r}: {n} samples (ids digest {d & 0xFFFFFFFF:08x})"
                               for r, (n, d) in enumerate(seen))
            raise ValueError(f"loader {loader_name!r}: the ranks watch different datasets ({listed}); every "
                             "rank must watch the whole dataset in the same order: the watched loader shards it")

    # -- records --------------------------------------------------------------------------------
    def buffer_record(self, name: str, split: str, step: int, arrays: dict[str, np.ndarray | None],
                      sample_ids: list[str], options: dict[str, Any]) -> None:
        present = [k for k in _ARRAY_FIELDS if arrays.get(k) is not None]
        header = {"name": name, "split": split, "step": step, "ids": sample_ids, "fields": present,
                  "options": options}
        with self._lock:
            self._buffer.append((header, [np.asarray(arrays[k]) for k in present]))

    def buffer_seen(self, rows: np.ndarray, step: int) -> None:
        with self._lock:
            self._seen.append((step, np.asarray(rows, dtype=np.int64)))

    def _take(self) -> tuple[list[tuple[dict[str, Any], list[np.ndarray]]], list[tuple[int, np.ndarray]]]:
        """This rank's buffered records, handed over to a gather (kept in flight until it succeeds)."""
        with self._lock:
            records, self._buffer = self._in_flight[0] + self._buffer, []
            seen, self._seen = self._in_flight[1] + self._seen, []
            self._in_flight = (records, seen)
        return records, seen

    def _payload(self, records: list[tuple[dict[str, Any], list[np.ndarray]]],
                 seen: list[tuple[int, np.ndarray]]) -> bytes:
        headers = [h for h, _ in records]
        arrays = [a for _, group in records for a in group]
        arrays += [rows for _, rows in seen]
        return encode({"records": headers, "seen": [s for s, _ in seen], "rows": self.experiment.table.n}, arrays)

    def sync_records(self) -> None:
        """Collective: rank 0 gathers every rank's buffered records and records them, joined by step."""
        parts = self.gather_bytes(self._payload(*self._take()))
        with self._lock:
            self._in_flight = ([], [])  # delivered
        if self.is_main:
            self._replay_parts([decode(data) for data in parts])

    def _replay_parts(self, parts: list[tuple[Any, list[np.ndarray]]]) -> None:
        merged: dict[tuple[str, str, int], list[tuple[dict[str, Any], dict[str, np.ndarray]]]] = {}
        seen: list[tuple[int, np.ndarray]] = []
        for rank, (header, arrays) in enumerate(parts):
            if header["rows"] != self.experiment.table.n:
                self.experiment.warn_once(
                    "dist-rows", "rank %d has %d sample rows, rank 0 has %d: register the same datasets in the "
                    "same order on every rank", rank, header["rows"], self.experiment.table.n)
            pos = 0
            for record in header["records"]:
                fields = {k: arrays[pos + i] for i, k in enumerate(record["fields"])}
                pos += len(record["fields"])
                merged.setdefault((record["name"], record["split"], record["step"]), []).append((record, fields))
            for step in header["seen"]:
                seen.append((step, arrays[pos]))
                pos += 1
        from weightslab.recorder import SeenRecord

        for step, rows in sorted(seen, key=lambda x: x[0]):
            self.experiment.recorder.submit(SeenRecord(rows, step))
        for (name, split, step), pieces in sorted(merged.items(), key=lambda kv: kv[0][2]):
            self._replay(name, split, step, pieces)

    def _record_own_buffer(self) -> None:
        """Rank 0's own records not yet gathered (another rank died): stored alone rather than lost."""
        header, arrays = decode(self._payload(*self._take()))
        with self._lock:
            self._in_flight = ([], [])
        self._replay_parts([(header, arrays)])

    def _replay(self, name: str, split: str, step: int,
                pieces: list[tuple[dict[str, Any], dict[str, np.ndarray]]]) -> None:
        options = dict(pieces[0][0]["options"])
        if options.get("per_instance") and len(pieces) > 1:  # instance ids differ per piece: one by one
            for piece in pieces:
                self._replay(name, split, step, [piece])
            return
        fields = pieces[0][0]["fields"]
        if any(p[0]["fields"] != fields for p in pieces):  # e.g. logits on one rank only: keep what all have
            fields = [f for f in fields if all(f in p[0]["fields"] for p in pieces)]
        values = [p[1]["values"] for p in pieces]
        if values and values[0].ndim == 0:  # a reduced loss: the global batch's mean (equal shards)
            joined: dict[str, Any] = {"values": np.asarray(float(np.mean([float(v) for v in values])))}
            ids: list[str] = []
        else:
            joined = {f: np.concatenate([p[1][f] for p in pieces]) for f in fields}
            ids = [i for p in pieces for i in p[0]["ids"]]
        if "logits" in joined:  # the recorder reads logits from tensors only
            joined["logits"] = self.torch.from_numpy(joined["logits"])
        self.replaying.active = True
        try:
            self.experiment.record(name, joined.pop("values"), ids, split=split, step=step, **joined, **options)
        except Exception:
            log.exception("recording %s gathered from the ranks at step %d failed", name, step)
        finally:
            self.replaying.active = False

    # -- the step boundary ------------------------------------------------------------------------
    def step_boundary(self) -> None:
        """Collective before every training step: rank 0 decides, every rank applies.

        Once per step: the loader and the guard both call it, and a loop accumulating gradients
        over several batches has one optimizer step — every rank skips the same repeated calls."""
        exp = self.experiment
        if exp.step == self._boundary_at:
            return
        if self.is_main:
            self._wait_while_held()
            if exp.hp is not None and exp.hp.new_pending.is_set():
                exp.hp.apply_pending()
            decision = self._decision()
            self.broadcast_json(decision)
        else:
            decision = self.broadcast_json()
            while decision.get("wait"):
                decision = self.broadcast_json()
            self._apply(decision)
        self._apply_discards(decision)
        if decision.get("restore"):
            self._sync_state()
        self._boundary_at = exp.step  # after a restore: the restored step
        self._steps_since_sync += 1
        if self._steps_since_sync >= self.sync_every:
            self._steps_since_sync = 0
            self.sync_records()

    def epoch_end(self) -> None:
        """Collective at the end of a training epoch: records reach rank 0 before anything else."""
        self._steps_since_sync = 0
        self.sync_records()

    def _wait_while_held(self) -> None:
        from weightslab.control import TrainingState

        exp = self.experiment
        while exp.control.state is not TrainingState.RUNNING:
            depth = exp.lock.release_all()  # let edits, evaluation and restores take the lock
            try:
                released = exp.control.step_boundary(timeout=HEARTBEAT_SECONDS)
            finally:
                exp.lock.reacquire(depth)
            if released:
                break
            self.broadcast_json({"wait": True})

    def _decision(self) -> dict[str, Any]:
        exp = self.experiment
        decision: dict[str, Any] = {"step": exp.step}
        if exp.hp is not None:
            flat = exp.hp.flat()
            if self._sent_hp is None:
                changed = flat
            else:
                changed = {k: v for k, v in flat.items() if self._sent_hp.get(k, _MISSING) != v}
            self._sent_hp = dict(flat)
            if changed:
                decision["hp"] = changed
        now = exp.table.discarded[:exp.table.n]
        agreed = self._agreed(len(now))
        if (now != agreed).any():
            decision["discard"] = np.flatnonzero(now & ~agreed).tolist()
            decision["restore_rows"] = np.flatnonzero(~now & agreed).tolist()
        if exp.label_edits.version != self._labels_sent:  # corrections: the whole set (small, rare)
            self._labels_sent = exp.label_edits.version
            rows = exp.label_edits.rows()
            decision["labels"] = [rows.tolist(), exp.label_edits.corrected(rows).tolist()]
        restores = exp.checkpoints.restores
        if restores != self._restores_seen:
            self._restores_seen = restores
            decision["restore"] = True
            decision["restored_step"] = exp.step
            decision["loaders"] = {name: loader._rng.bit_generator.state for name, loader in exp.loaders.items()}
        return decision

    def _agreed(self, n: int) -> np.ndarray:
        if len(self.agreed_discarded) < n:
            grown = np.zeros(n, dtype=bool)
            grown[:len(self.agreed_discarded)] = self.agreed_discarded
            self.agreed_discarded = grown
        return self.agreed_discarded[:n]

    def _apply(self, decision: dict[str, Any]) -> None:
        exp = self.experiment
        changed = decision.get("hp")
        if changed and exp.hp is not None:
            exp.hp.request_many(changed)
            exp.hp.apply_pending()
        for key, discarded in (("discard", True), ("restore_rows", False)):
            if decision.get(key):
                exp.table.set_discarded(np.asarray(decision[key], dtype=np.int64), discarded)
        if "labels" in decision:
            rows = np.asarray(decision["labels"][0], dtype=np.int64)
            labels = np.asarray(decision["labels"][1], dtype=np.int64)
            exp.label_edits.clear(np.setdiff1d(exp.label_edits.rows(), rows))
            if len(rows):
                exp.label_edits.set(rows, labels, by="rank 0", at=time.time())
        if decision.get("restore"):
            exp.step = int(decision["restored_step"])
            for name, state in decision.get("loaders", {}).items():
                loader = exp.loaders.get(name)
                if loader is not None:
                    loader._rng.bit_generator.state = state

    def _apply_discards(self, decision: dict[str, Any]) -> None:
        agreed = self._agreed(self.experiment.table.n)
        if decision.get("discard"):
            agreed[np.asarray(decision["discard"], dtype=np.int64)] = True
        if decision.get("restore_rows"):
            agreed[np.asarray(decision["restore_rows"], dtype=np.int64)] = False

    def _sync_state(self) -> None:
        """After a checkpoint restore on rank 0: its model and optimizer state on every rank."""
        torch, dist = self.torch, self.dist
        exp = self.experiment

        def send(tensor: Any) -> Any:
            cpu = tensor.detach().cpu().contiguous()
            dist.broadcast(cpu, 0, group=self.group)
            return cpu

        def run() -> None:
            for name in sorted(exp.models):
                for tensor in exp.models[name].state_dict().values():
                    if torch.is_tensor(tensor):
                        received = send(tensor)
                        if not self.is_main:
                            tensor.copy_(received)
            for name in sorted(exp.optimizers):
                opt = exp.optimizers[name]
                params = [p for group in opt.param_groups for p in group["params"]]
                layout = None
                if self.is_main:
                    layout = {"groups": [{k: v for k, v in g.items() if k != "params" and _jsonable(v)}
                                         for g in opt.param_groups],
                              "state": [[[k, list(v.shape), str(v.dtype).removeprefix("torch.")] if torch.is_tensor(v)
                                         else [k, v] for k, v in sorted(opt.state.get(p, {}).items())
                                         if torch.is_tensor(v) or _jsonable(v)] for p in params]}
                layout = self.broadcast_json(layout)
                for group, settings in zip(opt.param_groups, layout["groups"], strict=False):
                    group.update(settings)
                for p, entries in zip(params, layout["state"], strict=True):
                    state = opt.state.setdefault(p, {}) if not self.is_main else opt.state.get(p, {})
                    for entry in entries:
                        if len(entry) == 2:  # a plain number (e.g. a step count)
                            if not self.is_main:
                                state[entry[0]] = entry[1]
                            continue
                        key, shape, dtype = entry
                        if self.is_main:
                            send(state[key])
                        else:
                            buf = torch.empty(shape, dtype=getattr(torch, dtype))
                            dist.broadcast(buf, 0, group=self.group)
                            state[key] = buf.to(p.device)
            log.info("model and optimizer state taken from rank 0 after a checkpoint restore")

        self._collective("syncing a restored checkpoint", run)


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str)) or (
        isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value))


class _Missing:
    pass


_MISSING = _Missing()


def coordinator_for(experiment: Experiment) -> Coordinator | None:
    """The coordinator of a distributed job, ``None`` in a single process."""
    info = rank_info()
    return Coordinator(experiment, info) if info is not None else None


__all__ = ["Coordinator", "RankDied", "RankInfo", "coordinator_for", "decode", "encode", "rank_info"]
