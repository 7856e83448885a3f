"""How a watched dataset's items are laid out, and where the sample ids come from.

Three layouts are understood:

* ``plain``: ``(input, label, *extra)`` (or a bare input). WeightsLab adds the ids: the
  dataset index, as text.
* ``ids``: ``(input, sample_id, label, *extra)``, the shape the established WeightsLab
  examples write. The dataset's own ids are used; no second id column is added.
* ``dict``: mappings such as ``{"image": x, "label": y, "id": 7}``. The input is the first of
  ``image``/``input``/``x``/``data``, the label the first of ``label``/``target``/``y``/``mask``,
  the id (optional) the first of ``id``/``sample_id``/``idx``/``index``.

The rule: ``ids_in_items=True`` or ``False`` on ``watch_or_edit(..., flag="data")`` decides
(``False`` also reads no item at registration).
Left unset, a tuple item is read as ``ids`` only when it has at least three parts and its
second part looks like an id on a sample of up to 64 items spread over the dataset: text, or
integers that equal the item's index, or (with at least 8 items sampled) integers that are all
distinct — labels repeat, ids do not. The decision is logged once, naming the keyword.

Example::

    >>> class Pairs:
    ...     def __len__(self): return 10
    ...     def __getitem__(self, i): return ([0.0, 1.0], f"img-{i}", i % 2)
    >>> detect_layout(Pairs(), None).kind
    'ids'
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("weightslab.data")

INPUT_KEYS = ("image", "input", "x", "data")
LABEL_KEYS = ("label", "target", "y", "mask")
ID_KEYS = ("id", "sample_id", "idx", "index")
_SAMPLE = 64


@dataclass(frozen=True)
class ItemLayout:
    """``kind`` is ``plain``, ``ids`` or ``dict``; for dicts, the keys found in the first item."""

    kind: str
    input_key: str | None = None
    label_key: str | None = None
    id_key: str | None = None

    @property
    def own_ids(self) -> bool:
        """Whether the items carry their own sample ids."""
        return self.kind == "ids" or (self.kind == "dict" and self.id_key is not None)


PLAIN = ItemLayout("plain")


def _first_key(item: Mapping[Any, Any], keys: tuple[str, ...]) -> str | None:
    return next((k for k in keys if k in item), None)


def _scalar_id(value: Any) -> Any:
    """The value as ``str``/``int`` when it can be a sample id, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (str, bytes)):
        return value.decode() if isinstance(value, bytes) else value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if hasattr(value, "ndim") and getattr(value, "ndim", 1) == 0 and hasattr(value, "item"):
        inner = value.item()
        return inner if isinstance(inner, int) and not isinstance(inner, bool) else None
    return None


def _looks_like_ids(dataset: Any, n: int, first: Any) -> bool:
    picks = sorted({int(i) for i in np.linspace(0, n - 1, num=min(n, _SAMPLE))})
    values = []
    for i in picks:
        item = first if i == 0 else dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) < 3:
            return False
        value = _scalar_id(item[1])
        if value is None:
            return False
        values.append((i, value))
    if all(isinstance(v, str) for _, v in values):
        return True
    if all(isinstance(v, int) for _, v in values):
        if all(i == v for i, v in values):
            return True
        return len(values) >= 8 and len({v for _, v in values}) == len(values)
    return False


def detect_layout(dataset: Any, ids_in_items: bool | None, name: str = "data") -> ItemLayout:
    """The layout of a map-style dataset's items (see the module docstring for the rule)."""
    n = len(dataset)
    if n == 0 or ids_in_items is False:
        return PLAIN  # dict batches still find their input/label keys when collated (split_batch)
    first = dataset[0]
    if isinstance(first, Mapping):
        layout = ItemLayout("dict", _first_key(first, INPUT_KEYS), _first_key(first, LABEL_KEYS),
                            _first_key(first, ID_KEYS))
        if ids_in_items is True and layout.id_key is None:
            raise ValueError(f"ids_in_items=True but the items of {name!r} have none of the id keys "
                             f"{', '.join(ID_KEYS)}")
        return layout
    if ids_in_items is True:
        if not isinstance(first, (tuple, list)) or len(first) < 2 or _scalar_id(first[1]) is None:
            raise ValueError(f"ids_in_items=True expects items (input, sample_id, label, *extra) with a text or "
                             f"integer id; the first item of {name!r} is {type(first).__name__}")
        return ItemLayout("ids")
    if isinstance(first, (tuple, list)) and len(first) >= 3 and _looks_like_ids(dataset, n, first):
        log.info("%s: items read as (input, sample_id, label, ...) — their second part looks like an id; "
                 "pass ids_in_items=False if it is a label", name)
        return ItemLayout("ids")
    return PLAIN


def item_id(item: Any, layout: ItemLayout) -> Any:
    """The sample id an item carries (``layout.own_ids`` must be true)."""
    raw = item[layout.id_key] if layout.kind == "dict" else item[1]
    value = _scalar_id(raw)
    if value is None:
        raise ValueError(f"sample id {raw!r} is not text or an integer")
    return value


def item_label(item: Any, layout: ItemLayout) -> Any:
    """The label an item carries, or ``None``."""
    if layout.kind == "dict":
        return item.get(layout.label_key) if layout.label_key is not None else None
    if isinstance(item, (tuple, list)):
        index = 2 if layout.kind == "ids" else 1
        return item[index] if len(item) > index else None
    return None


def split_batch(batch: Any, layout: ItemLayout) -> tuple[Any, Any, tuple[Any, ...]]:
    """A collated batch as ``(inputs, labels, extra)``; the items' own id column is dropped."""
    if layout.kind == "plain" and isinstance(batch, Mapping):  # dict items, layout not read at registration
        layout = ItemLayout("dict", _first_key(batch, INPUT_KEYS), _first_key(batch, LABEL_KEYS), None)
    if layout.kind == "dict" and isinstance(batch, Mapping) and layout.input_key is not None:
        rest = {k: v for k, v in batch.items() if k not in (layout.input_key, layout.label_key, layout.id_key)}
        labels = batch.get(layout.label_key) if layout.label_key is not None else None
        return batch[layout.input_key], labels, ((rest,) if rest else ())
    if layout.kind == "ids" and isinstance(batch, (tuple, list)):
        return batch[0], (batch[2] if len(batch) > 2 else None), tuple(batch[3:])
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1], tuple(batch[2:])
    if isinstance(batch, (tuple, list)) and len(batch) == 1:
        return batch[0], None, ()
    return batch, None, ()
