"""SDK: per-instance and per-group values, and static signals over a dataset.

``save_instance_signals`` and ``save_group_signals`` go through the same per-instance path
as a watched loss with ``per_instance=True``: instance values fold into the sample row by
``WL_INSTANCE_AGGREGATION`` (the table column and the curve), the breakdown stays in
``_instance_signals`` and every value in the instance history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from weightslab._torch import to_numpy
from weightslab.plugins import call_accepting
from weightslab.sdk import get_experiment
from weightslab.table import ids_to_list, normalize_id


def _check_signals(signals: Any) -> Mapping[str, Any]:
    if not isinstance(signals, Mapping) or not signals:
        raise ValueError("signals: expected a non-empty mapping of signal name -> values")
    return signals


def save_instance_signals(signals: Mapping[str, Any], batch_ids: Any, batch_idx: Any, step: int | None = None,
                          origin: str | None = None, targets: Any = None, log: bool = False) -> None:
    """Per-instance (per-annotation) values of a batch.

    ``batch_idx[i]`` is the position in ``batch_ids`` of the sample instance ``i`` belongs to;
    instances are numbered ``0, 1, ...`` within their sample in order of appearance.
    ``origin``: the split (default: the batch's loader split). ``targets`` is accepted for
    per-instance labels and not stored (the sample's label comes from its loader).
    """
    del targets
    _check_signals(signals)
    ids = ids_to_list(batch_ids)
    idx = np.asarray(to_numpy(batch_idx)).reshape(-1)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"batch_idx: expected integer positions into batch_ids, got dtype {idx.dtype}")
    if len(idx) and (idx.min() < 0 or idx.max() >= len(ids)):
        raise ValueError(f"batch_idx: positions must be in 0..{len(ids) - 1} (batch_ids has {len(ids)} ids)")
    owners = [ids[i] for i in idx.tolist()]
    seen: dict[str, int] = {}
    annotation_ids = []
    for sid in owners:
        annotation_ids.append(str(seen.get(sid, 0)))
        seen[sid] = seen.get(sid, 0) + 1
    experiment = get_experiment()
    for name, values in signals.items():
        experiment.record(name, values, owners, split=origin, per_instance=True, annotation_ids=annotation_ids,
                          log_curve=log, step=step)


def _group_members(group: Any) -> tuple[list[str], str]:
    if isinstance(group, (tuple, list)) or (hasattr(group, "__len__") and not isinstance(group, (str, bytes))
                                            and getattr(group, "ndim", 1) == 1):
        members = ids_to_list(group)
        if not members:
            raise ValueError("group_ids: a group needs at least one sample id")
        return members, "group:" + "+".join(members)
    sid = normalize_id(group)
    return [sid], f"group:{sid}"


def save_group_signals(signals: Mapping[str, Any], group_ids: Sequence[Any], origin: str = "train",
                       step: int | None = None, log: bool = True) -> None:
    """Group-level values, e.g. a pair's contrastive loss: one value per group.

    A group is a sequence of sample ids (``("12", "40")``) or one sample id. Each member gets
    the group's value as an instance named ``group:<id>+<id>``, folded into its row.
    """
    _check_signals(signals)
    if isinstance(group_ids, (str, bytes)) or not hasattr(group_ids, "__len__"):
        raise ValueError("group_ids: expected a sequence with one group per value")
    groups = [_group_members(g) for g in group_ids]
    experiment = get_experiment()
    splits = experiment.table.splits()
    if origin not in splits:
        raise ValueError(f"origin={origin!r}: unknown split; known: {', '.join(sorted(splits)) or 'none yet'}")
    owners = [sid for members, _ in groups for sid in members]
    experiment.table.find(owners, origin)  # unknown members: a clear error before anything is recorded
    annotation_ids = [key for members, key in groups for _ in members]
    for name, values in signals.items():
        vals = np.asarray(to_numpy(values), dtype=np.float64).reshape(-1)
        if len(vals) != len(groups):
            raise ValueError(f"signal {name!r} has {len(vals)} values for {len(groups)} groups: one per group")
        spread = np.repeat(vals, [len(members) for members, _ in groups])
        experiment.record(name, spread, owners, split=origin, per_instance=True, annotation_ids=annotation_ids,
                          log_curve=log, step=step)


def compute_signals(dataset_or_loader: Any, origin: str | None = None,
                    signals: Sequence[str] | None = None) -> dict[str, int]:
    """Run the static ``@wl.signal`` functions (no ``subscribe_to``) over every item; store the values.

    Each function is called with the item's input (and ``label=``, ``sample_id=``, ``item=``
    when it accepts them) and returns a number. ``origin``: the split to store into (default:
    the watched loader's split). Returns how many values each signal stored.
    """
    experiment = get_experiment()
    known = experiment.static_signals
    names = list(known) if signals is None else list(signals)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"signals: unknown {', '.join(unknown)}; registered static signals: "
                         f"{', '.join(known) or 'none (use @wl.signal(name) without subscribe_to)'}")
    from weightslab.data import WatchedLoader
    from weightslab.item_layout import PLAIN, detect_layout, item_label, split_batch

    if isinstance(dataset_or_loader, WatchedLoader):
        loader = dataset_or_loader
        split = origin or loader.split
        ids, layout = loader.ids, loader.layout
        fetch = loader.item
    else:
        split = origin or "train"
        dataset = dataset_or_loader
        watched = next((ld for ld in experiment.loaders.values() if ld.dataset is dataset), None)
        if watched is not None:  # identity, never ==: a dataset may define elementwise equality
            ids, layout, fetch, split = watched.ids, watched.layout, watched.item, origin or watched.split
        else:
            layout = detect_layout(dataset, None, split) if hasattr(dataset, "__getitem__") else PLAIN
            ids = [str(i) for i in range(len(dataset))]
            fetch = dataset.__getitem__
            experiment.register_samples(split, ids)
    counts: dict[str, int] = {}
    for name in names:
        fn = known[name]
        values = np.full(len(ids), np.nan)
        for i, sid in enumerate(ids):
            item = fetch(i)
            inputs, _, _ = split_batch(item, layout) if isinstance(item, (tuple, list, Mapping)) else (item, None, ())
            values[i] = float(call_accepting(fn, inputs, label=item_label(item, layout), sample_id=sid, item=item))
        experiment.record(name, values, list(ids), split=split, log_curve=False, derived=False)
        counts[name] = int(np.isfinite(values).sum())
    return counts
