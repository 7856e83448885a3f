"""Watched data: a dataset becomes a loader yielding ``(inputs, sample_ids, targets, *rest)``.

Items may carry their own ids (``(input, sample_id, label, ...)`` or dicts): see
:mod:`weightslab.item_layout` for the rule. ``next(loader)`` never runs dry (a new epoch
starts), while ``for batch in loader`` ends after one epoch.

Discarded samples are skipped from the next batch on (the sampler checks the table at
each batch, and a batch prefetched by workers is filtered again in the main process);
the batch size can change live.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np

from weightslab._torch import torch_or_none
from weightslab.item_layout import PLAIN, ItemLayout, detect_layout, item_id, item_label, split_batch
from weightslab.narrow import narrowed
from weightslab.spelled import SpelledSequence
from weightslab.table import normalize_id

if TYPE_CHECKING:
    from weightslab.experiment import Experiment

log = logging.getLogger("weightslab.data")


def _is_array_tuple(data: Any) -> bool:
    return isinstance(data, (tuple, list)) and len(data) > 0 and all(
        isinstance(part, np.ndarray) for part in data)


_LABEL_KEYS = frozenset({"label", "labels", "target", "targets", "y", "class", "mask", "masks", "boxes"})


def _hash_part(digest: Any, part: Any) -> None:
    """Hash the full content (never ``repr``: it elides large arrays and shows memory addresses)."""
    if isinstance(part, Mapping):
        for key in sorted(part, key=str):
            digest.update(str(key).encode())
            _hash_part(digest, part[key])
        return
    if isinstance(part, (tuple, list)):
        for sub in part:
            _hash_part(digest, sub)
        return
    if hasattr(part, "detach"):
        part = part.detach().cpu().numpy()
    if isinstance(part, (bytes, bytearray)):
        digest.update(bytes(part))
        return
    if isinstance(part, str):
        digest.update(part.encode())
        return
    if not isinstance(part, np.ndarray) and hasattr(part, "__array_interface__") or hasattr(part, "getdata"):
        part = np.asarray(part)  # e.g. a PIL image
    if isinstance(part, np.ndarray) and part.dtype != object:
        digest.update(np.ascontiguousarray(part).tobytes())
        digest.update(f"{part.dtype}{part.shape}".encode())
    else:
        digest.update(repr(part).encode())


def _content_hash(item: Any) -> str:
    digest = hashlib.sha256()
    # The input only: identical inputs with different labels are duplicates.
    if isinstance(item, Mapping):  # e.g. {"image": ..., "label": ...}
        _hash_part(digest, {k: v for k, v in item.items() if str(k).lower() not in _LABEL_KEYS})
    else:
        parts = item if isinstance(item, (tuple, list)) else (item,)
        _hash_part(digest, parts[0] if parts else ())
    return digest.hexdigest()[:16]


class NumberedIds(SpelledSequence):
    """The ids ``"0" .. "n-1"`` of a loader that numbers its samples, as a sequence of text
    without a string object per sample (``numbers`` gives them as an int64 array)."""

    def __init__(self, n: int) -> None:
        self._n = int(n)

    @property
    def numbers(self) -> np.ndarray:
        return np.arange(self._n, dtype=np.int64)

    def __len__(self) -> int:
        return self._n

    def _spell(self, start: int, stop: int) -> list[str]:
        return [str(v) for v in range(start, stop)]

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and value.isdigit() and value.isascii() and (
            len(value) == 1 or value[0] != "0") and int(value) < self._n


class _BatchSampler:
    """Yields arrays (int64) of dataset indices; reads batch size and discards live at every batch."""

    def __init__(self, loader: WatchedLoader) -> None:
        self.loader = loader

    def __iter__(self) -> Iterator[np.ndarray]:
        loader = self.loader
        n = len(loader.ids)
        order = loader._take_order()
        rows = loader.rows
        coordinator = loader.experiment.coordinator
        if coordinator is not None and loader.is_training:
            yield from _shard_batches(loader, coordinator, order)
            return
        pos = 0
        while pos < n:
            size = loader.batch_size
            discarded = loader.experiment.table.discarded  # re-read: the table may have grown
            parts: list[np.ndarray] = []
            count = 0
            while pos < n and count < size:
                chunk = order[pos:pos + size - count]
                pos += len(chunk)
                parts.append(chunk[~discarded[rows[chunk]]])
                count += len(parts[-1])
            batch = parts[0] if len(parts) == 1 else np.concatenate(parts)
            if not len(batch) or (loader.drop_last and len(batch) < size):
                return
            yield batch.astype(np.int64, copy=False)

    def __len__(self) -> int:
        coordinator = self.loader.experiment.coordinator
        if coordinator is not None and self.loader.is_training:
            active = -(-int((~coordinator._agreed(self.loader.experiment.table.n)[self.loader.rows]).sum())
                       // coordinator.world_size)
        else:
            active = int((~self.loader.experiment.table.discarded[self.loader.rows]).sum())
        size = self.loader.batch_size
        return active // size if self.loader.drop_last else -(-active // size)


def _shard_batches(loader: WatchedLoader, coordinator: Any, order: np.ndarray) -> Iterator[np.ndarray]:
    """This rank's batches of the epoch, ``DistributedSampler``-style: the samples active at the
    epoch's start (discards every rank agreed on), padded to a multiple of the world size, every
    ``world``-th from ``rank``. Batch size fixed for the epoch: every rank runs the same number of batches."""
    agreed = coordinator._agreed(loader.experiment.table.n)
    active = order[~agreed[loader.rows[order]]]
    if len(active) == 0:
        return
    world = coordinator.world_size
    padded = np.resize(active, -(-len(active) // world) * world)  # repeats from the start, like torch
    mine = padded[coordinator.rank::world]
    size = loader.batch_size
    for start in range(0, len(mine), size):
        batch = mine[start:start + size]
        if loader.drop_last and len(batch) < size:
            return
        yield batch.astype(np.int64, copy=False)


class _IndexedDataset:
    """Wraps a torch dataset so every item travels with its index."""

    def __init__(self, dataset: Any, *, tensors: tuple[Any, ...] | None = None) -> None:
        self.dataset = dataset
        self.tensors = tensors  # a plain TensorDataset under the default collate: fetched a batch at a time

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> tuple[Any, int]:
        return self.dataset[idx], idx

    def __getitems__(self, indices: np.ndarray | list[int]) -> list[tuple[Any, int]] | _Collated:
        if self.tensors is not None:  # one gather per tensor: what collating the items one by one gives
            torch = torch_or_none()
            assert torch is not None
            index = torch.as_tensor(indices, dtype=torch.int64)
            return _Collated(tuple(t.index_select(0, index) for t in self.tensors), np.asarray(indices))
        positions = indices.tolist() if isinstance(indices, np.ndarray) else list(indices)  # a dataset sees ints
        many = getattr(self.dataset, "__getitems__", None)  # batched fetch when the dataset has one
        items = many(positions) if many is not None else [self.dataset[i] for i in positions]
        return list(zip(items, positions, strict=True))


class _Collated(NamedTuple):
    """A batch already collated where it was fetched (see :class:`_IndexedDataset`)."""

    batch: tuple[Any, ...]
    indices: np.ndarray


class _IndexedCollate:
    def __init__(self, collate_fn: Any) -> None:
        self.collate_fn = collate_fn

    def __call__(self, batch: list[tuple[Any, int]] | _Collated) -> tuple[Any, np.ndarray | list[int]]:
        if isinstance(batch, _Collated):
            return batch.batch, batch.indices
        items = [item for item, _ in batch]
        return self.collate_fn(items), [idx for _, idx in batch]


def _plain_tensors(dataset: Any, collate_fn: Any) -> tuple[Any, ...] | None:
    """The tensors of a ``TensorDataset`` (the class itself: a subclass may change ``__getitem__``)
    that the default collate would stack item by item; None for anything else."""
    from torch.utils.data import TensorDataset

    if collate_fn is not None or type(dataset) is not TensorDataset:
        return None
    tensors = tuple(dataset.tensors)
    return tensors if tensors and all(t.dim() >= 1 for t in tensors) else None


class WatchedLoader:
    """Iterable over batches ``(inputs, sample_ids, targets, *rest)`` of a watched dataset."""

    def __init__(self, experiment: Experiment, dataset: Any, *, loader_name: str = "train",
                 batch_size: int = 1, shuffle: bool = False, num_workers: int = 0,
                 drop_last: bool = False, pin_memory: bool = False, is_training: bool | None = None,
                 compute_hash: bool = False, collate_fn: Any = None, seed: int | None = None,
                 preview_fn: Any = None, enable_h5_persistence: bool = True,
                 labels: Sequence[Any] | None = None, ids_in_items: bool | None = None,
                 preload_labels: bool | None = None, preload_metadata: bool | None = None) -> None:
        if not isinstance(loader_name, str) or not loader_name:
            raise ValueError(f"loader_name={loader_name!r}: expected a non-empty name")
        _check_positive("batch_size", batch_size)
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers={num_workers!r}: expected an integer >= 0")
        self.experiment = experiment
        self.dataset = dataset
        self.split = loader_name
        self.is_training = (loader_name == "train") if is_training is None else bool(is_training)
        self._batch_size = batch_size
        self.shuffle = shuffle
        self.num_workers = num_workers
        self.drop_last = drop_last
        self.pin_memory = pin_memory
        self.preview_fn = preview_fn
        self.enable_h5_persistence = enable_h5_persistence
        if experiment.coordinator is not None and self.is_training:
            seed = experiment.coordinator.agree_seed(seed)  # one permutation per epoch for all ranks
        elif seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed)
        self._order: np.ndarray | None = None  # the next epoch's order, drawn ahead (below)
        # preload_metadata only tuned the established implementation's caching: accepted, nothing to do.
        del preload_metadata
        self._cycle: Iterator[tuple[Any, ...]] | None = None  # next(loader): the epoch in progress
        self._numpy = _is_array_tuple(dataset) or isinstance(dataset, np.ndarray)
        self.layout: ItemLayout = PLAIN
        if self._numpy:
            parts = (dataset,) if isinstance(dataset, np.ndarray) else tuple(dataset)
            lengths = {len(p) for p in parts}
            if len(lengths) != 1:
                raise ValueError(f"data arrays have different lengths {sorted(lengths)}: expected equal lengths")
            self._parts = parts
            n = lengths.pop()
        else:
            if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
                raise TypeError(
                    f"flag='data' expects a map-style dataset (__getitem__ and __len__) or a tuple of "
                    f"numpy arrays, got {type(dataset).__name__}")
            n = len(dataset)
            self.layout = detect_layout(dataset, ids_in_items, loader_name)
        self._id_ints: np.ndarray | None = None
        item_labels: list[Any] | None = None
        self.ids: Sequence[str]
        if self.layout.own_ids:
            own, item_labels = self._read_own_ids(n)
            self.ids = [normalize_id(v) for v in own]
            if len(set(self.ids)) != n:
                raise ValueError(f"{loader_name}: the items' own sample ids are not unique "
                                 f"({n - len(set(self.ids))} repeated); pass ids_in_items=False to number them")
            if all(isinstance(v, int) for v in own):
                self._id_ints = np.asarray(own, dtype=np.int64)
            self._int_ids = False
        elif compute_hash:
            hashed = [_content_hash(self._item(i)) for i in range(n)]
            if len(set(hashed)) != n:
                log.warning("%s: %d duplicate inputs share a content hash", loader_name, n - len(set(hashed)))
                seen: dict[str, int] = {}
                for i, sid in enumerate(hashed):  # keep ids unique: suffix duplicates
                    count = seen.get(sid, 0)
                    seen[sid] = count + 1
                    if count:
                        hashed[i] = f"{sid}-{count}"
            self.ids = hashed
            self._int_ids = False
        else:
            self.ids = NumberedIds(n)
            self._int_ids = True
        if labels is None:
            labels = self._find_labels()
        if labels is None and item_labels is not None and all(_scalar_label(v) for v in item_labels):
            labels = [v.item() if hasattr(v, "item") else v for v in item_labels]
        elif labels is None and preload_labels and not self._numpy:
            labels = [item_label(self.dataset[i], self.layout) for i in range(n)]  # one pass, on request
        if experiment.coordinator is not None and self.is_training:  # before any row exists: nothing to undo
            experiment.coordinator.agree_dataset(self.split, self.ids)
        # int32 while they fit: 4 bytes a sample; a batch widens its 1,024 rows back to int64
        self.rows = narrowed(experiment.register_samples(self.split, self.ids, labels))
        self._order = self._take_order() if shuffle else None
        self._index: dict[str, int] | None = None
        self._torch_loader: Any = None
        if not self._numpy:
            self._make_torch_loader(collate_fn)

    # -- live settings ------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        _check_positive("batch_size", value)
        self._batch_size = int(value)

    def __len__(self) -> int:
        return len(_BatchSampler(self))

    def _take_order(self) -> np.ndarray:
        """This epoch's sample order: drawn ahead at registration for the first epoch (a million-
        sample shuffle is ~20 ms, set-up work rather than the first step's), else now; the same
        draws from the same generator either way."""
        order, self._order = self._order, None
        if order is not None and self.shuffle:
            return order
        n = len(self.ids)
        order = np.arange(n, dtype=np.int32 if n < np.iinfo(np.int32).max else np.int64)
        if self.shuffle:  # the draws of rng.permutation(n), made on int32 (no int64 copy of a million)
            self._rng.shuffle(order)
        return order

    def index_of(self, sample_id: str) -> int:
        """Dataset index of a sample id of this loader."""
        if self._int_ids:
            if sample_id.isdigit() and int(sample_id) < len(self.ids):
                return int(sample_id)
        else:
            if self._index is None:
                self._index = {sid: i for i, sid in enumerate(self.ids)}
            if sample_id in self._index:
                return self._index[sample_id]
        raise ValueError(f"sample_id={sample_id!r} is not in split {self.split!r}")

    def item(self, index: int) -> Any:
        """The raw dataset item at ``index`` (not collated)."""
        return self._item(index)

    # -- helpers ------------------------------------------------------------
    def _read_own_ids(self, n: int) -> tuple[list[Any], list[Any]]:
        """Every item's own id (and label): one pass over the dataset at registration."""
        ids: list[Any] = []
        labels: list[Any] = []
        for i in range(n):
            item = self.dataset[i]
            ids.append(item_id(item, self.layout))
            labels.append(item_label(item, self.layout))
        return ids, labels

    def _item(self, i: int) -> Any:
        if self._numpy:
            return tuple(p[i] for p in self._parts)
        return self.dataset[i]

    def _find_labels(self) -> Any:
        if self._numpy:
            return self._parts[1] if len(self._parts) > 1 else None
        targets = getattr(self.dataset, "targets", None)
        if targets is None:
            return None
        if hasattr(targets, "detach"):
            targets = targets.detach().cpu().numpy()
        return targets  # made an array (an object array when ragged) by register_samples

    def _make_torch_loader(self, collate_fn: Any) -> None:
        torch = torch_or_none()
        if torch is None:
            self._torch_loader = None
            return
        from torch.utils.data import DataLoader
        from torch.utils.data.dataloader import default_collate

        self._torch_loader = DataLoader(
            cast(Any, _IndexedDataset(self.dataset, tensors=_plain_tensors(self.dataset, collate_fn))),
            batch_sampler=cast(Any, _BatchSampler(self)),  # arrays of indices: our dataset wrapper reads them
            num_workers=self.num_workers, pin_memory=self.pin_memory,
            collate_fn=_IndexedCollate(collate_fn or default_collate))

    def _batches(self) -> Iterator[tuple[Any, np.ndarray | list[int]]]:
        if self._numpy:
            for idx in _BatchSampler(self):
                parts = tuple(p[idx] for p in self._parts)
                yield parts if len(parts) > 1 else parts[0], idx
        elif self._torch_loader is not None:
            yield from self._torch_loader
        else:  # a map-style dataset without torch: plain Python batching
            for idx in _BatchSampler(self):
                yield [self.dataset[i] for i in idx.tolist()], idx

    def _filter(self, batch: Any, idx: np.ndarray) -> tuple[Any, np.ndarray]:
        """Drop samples discarded after the batch was prefetched (worker processes)."""
        discarded = self.experiment.table.discarded[self.rows[idx]]
        if not discarded.any():
            return batch, idx
        keep = np.flatnonzero(~discarded)

        def take(part: Any) -> Any:
            if isinstance(part, Mapping):  # a collated dict (e.g. {"image": ..., "label": ...})
                return {key: take(value) for key, value in part.items()}
            if hasattr(part, "index_select"):
                torch = torch_or_none()
                assert torch is not None
                return part.index_select(0, torch.as_tensor(keep, device=part.device))
            if isinstance(part, np.ndarray):
                return part[keep]
            if isinstance(part, list):
                return [part[i] for i in keep]
            return part

        if isinstance(batch, (tuple, list)) and not (isinstance(batch, list) and not self._numpy
                                                      and self._torch_loader is None):
            batch = type(batch)(take(p) for p in batch)
        else:
            batch = take(batch)
        return batch, idx[keep]

    def _ids_out(self, idx: np.ndarray | list[int]) -> Any:
        if self._id_ints is not None:  # the items' own integer ids
            torch = torch_or_none()
            own = self._id_ints[np.asarray(idx, dtype=np.int64)]
            return torch.as_tensor(own) if torch is not None and not self._numpy else own
        if self._int_ids:
            torch = torch_or_none()
            if torch is not None and not self._numpy:
                return torch.as_tensor(idx, dtype=torch.int64)
            return np.asarray(idx, dtype=np.int64)
        return [self.ids[i] for i in idx]

    def set_epoch(self, epoch: int) -> None:
        """``DistributedSampler.set_epoch``: the next epoch's order is drawn from (seed, epoch), so
        every rank calling it with the same epoch shuffles alike and a rerun repeats it. Without it
        each epoch still gets a new order, the same on every rank."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"set_epoch(epoch={epoch!r}): expected an integer >= 0")
        self._rng = np.random.default_rng([self._seed, int(epoch)])
        self._order = None

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        experiment = self.experiment
        coordinator = experiment.coordinator if self.is_training else None
        yield from self._epoch(experiment, coordinator is not None)
        if coordinator is not None:
            coordinator.epoch_end()  # every rank ends the epoch here: records reach rank 0

    def _epoch(self, experiment: Any, distributed: bool) -> Iterator[tuple[Any, ...]]:
        for batch, positions in self._batches():
            idx = np.asarray(positions, dtype=np.int64)
            if self.is_training:
                experiment.step_boundary()  # pause here; apply pending edits
            if not distributed:  # distributed: discards apply at the epoch boundary (equal batch counts)
                batch, idx = self._filter(batch, idx)
            if not len(idx):
                continue
            ids = self._ids_out(idx)
            rows = self.rows[idx].astype(np.int64)
            experiment.batch_started(self, rows, ids)
            if self._torch_loader is None and not self._numpy:  # plain Python batching: items as they are
                yield (batch, ids, None)
                continue
            inputs, labels, extra = split_batch(batch, self.layout)
            labels = experiment.label_edits.overlay(rows, labels)  # corrected labels, from this batch on
            yield (inputs, ids, labels, *extra)

    def __next__(self) -> tuple[Any, ...]:
        """``next(loader)`` never runs dry: a new epoch starts when one ends (step-based scripts).

        ``for batch in loader`` still ends after one epoch. Discards, batch-size changes and
        pause apply as in a ``for`` loop.
        """
        for fresh in (False, True):
            if self._cycle is None:
                self._cycle = iter(self)
            try:
                return next(self._cycle)
            except StopIteration:
                self._cycle = None
                if fresh:
                    break
        raise RuntimeError(f"split {self.split!r} has no active sample to yield "
                           f"(all {len(self.ids)} are discarded, or the dataset is empty)")


def _scalar_label(value: Any) -> bool:
    """Whether a label read from an item can be a table label (class index, number or text)."""
    if isinstance(value, (int, float, str, np.integer, np.floating)):
        return True
    return hasattr(value, "ndim") and getattr(value, "ndim", 1) == 0


def _check_positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r}: expected a positive integer")
