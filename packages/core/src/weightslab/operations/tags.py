"""Every tag of the table: kind, per-split row counts, categorical values with counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from weightslab.operations._frames import snapshot
from weightslab.query import factorize


@dataclass(frozen=True)
class TagValueCount:
    value: str
    count: int
    split_counts: dict[str, int]


@dataclass(frozen=True)
class TagSummary:
    name: str
    kind: str  # "boolean" | "categorical"
    count: int  # rows having the tag, discarded included
    split_counts: dict[str, int]
    discarded: int
    values: tuple[TagValueCount, ...] = ()  # categorical: most frequent first


@dataclass(frozen=True)
class ListTagsRequest:
    pass


@dataclass(frozen=True)
class ListTagsResult:
    tags: tuple[TagSummary, ...]


def _per_split(names: list[Any], codes: np.ndarray) -> dict[str, int]:
    counts = np.bincount(codes[codes >= 0], minlength=len(names))
    return {str(name): int(c) for name, c in zip(names, counts.tolist(), strict=True) if c}


def list_tags(experiment: Any, request: ListTagsRequest | None = None) -> ListTagsResult:
    frame = snapshot(experiment)
    split_names, split_codes = frame.split_codes()
    out: list[TagSummary] = []
    for name, col in frame.tags.items():
        has = np.asarray(col, dtype=bool)
        out.append(TagSummary(name=name, kind="boolean", count=int(has.sum()),
                              split_counts=_per_split(split_names, split_codes[has]),
                              discarded=int((has & frame.discarded).sum())))
    for name, col in frame.categories.items():
        uniques, codes = factorize(col)
        has = codes >= 0
        values: list[TagValueCount] = []
        if len(uniques):
            sel = has & (split_codes >= 0)
            pair = codes[sel] * max(len(split_names), 1) + split_codes[sel]
            table = np.bincount(pair, minlength=len(uniques) * max(len(split_names), 1)).reshape(
                len(uniques), max(len(split_names), 1))
            totals = table.sum(axis=1)
            for i in np.argsort(-totals, kind="stable").tolist():
                values.append(TagValueCount(
                    value=str(uniques[i]), count=int(totals[i]),
                    split_counts={str(split_names[s]): int(c) for s, c in enumerate(table[i].tolist()) if c}))
        out.append(TagSummary(name=name, kind="categorical", count=int(has.sum()),
                              split_counts=_per_split(split_names, split_codes[has]),
                              discarded=int((has & frame.discarded).sum()), values=tuple(values)))
    out.sort(key=lambda t: (t.name, t.kind))
    return ListTagsResult(tags=tuple(out))
