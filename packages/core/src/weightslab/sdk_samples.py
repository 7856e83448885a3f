"""SDK: categorical tags and id listings (``wl.register_categorical_tag``, ``wl.get_samples_by_tag``...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from weightslab.sdk import get_experiment


def register_categorical_tag(name: str, categories: Sequence[str], replace: bool = False) -> list[str]:
    """Declare a categorical tag and its values (shown as choices); returns the value set.

    Values add to an existing declaration unless ``replace=True``. ``set_categorical_tag``
    accepts values not declared here and adds them.

    >>> wl.register_categorical_tag("quality", ["sharp", "blurry"])  # doctest: +SKIP
    ['sharp', 'blurry']
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r}: expected a non-empty tag name")
    if isinstance(categories, str) or not all(isinstance(c, str) and c for c in categories):
        raise ValueError(f"categories={categories!r}: expected a list of non-empty strings")
    experiment = get_experiment()
    from weightslab.table import check_name

    check_name(name, "tag")
    for value in categories:
        check_name(value, "category value")
    with experiment.data_lock:
        known = [] if replace else list(experiment.categorical_tags.get(name, []))
        known += [c for c in categories if c not in known]
        experiment.categorical_tags[name] = known
    return list(known)


def set_categorical_tag(sample_ids: Any, name: str, value: str | None) -> dict[str, Any]:
    """Set ``name=value`` on the samples (``value=None`` clears it); declares the value if new."""
    experiment = get_experiment()
    if value is None:
        return experiment.edit("clear_category", ids=sample_ids, tag=name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"value={value!r}: expected a non-empty string or None")
    result = experiment.edit("set_category", ids=sample_ids, tag=name, value=value)
    register_categorical_tag(name, [value])
    return result


def _split_rows(experiment: Any, origin: str) -> np.ndarray:
    experiment.recorder.drain()
    splits = experiment.table.splits()
    if origin not in splits:
        raise ValueError(f"origin={origin!r}: unknown split; known: {', '.join(sorted(splits)) or 'none yet'}")
    n = experiment.table.n
    return np.flatnonzero(experiment.table.split[:n] == origin)


def _ids(experiment: Any, rows: np.ndarray, limit: int | None) -> list[str]:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValueError(f"limit={limit!r}: expected an integer >= 0 or None")
    rows = rows if limit is None else rows[:limit]
    return [str(s) for s in experiment.table.sample_id[rows]]


def get_samples_by_tag(tag: str, origin: str = "train", limit: int | None = None) -> list[str]:
    """Ids of the samples of split ``origin`` having ``tag`` (``name=value`` for a categorical tag).

    A tag nobody has set yet matches nothing (an empty list).
    """
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"tag={tag!r}: expected a tag name (or name=value)")
    experiment = get_experiment()
    with experiment.data_lock:
        rows = _split_rows(experiment, origin)
        name, _, value = tag.partition("=")
        if value:
            column = experiment.table.categories.get(name)
            hit = (column[rows] == value) if column is not None else np.zeros(len(rows), bool)
        else:
            column = experiment.table.tags.get(tag)
            hit = column[rows] if column is not None else np.zeros(len(rows), bool)
        return _ids(experiment, rows[np.asarray(hit, dtype=bool)], limit)


def get_discarded_samples(origin: str = "train", limit: int | None = None) -> list[str]:
    """Ids of the discarded samples of split ``origin``."""
    experiment = get_experiment()
    with experiment.data_lock:
        rows = _split_rows(experiment, origin)
        return _ids(experiment, rows[experiment.table.discarded[rows]], limit)
