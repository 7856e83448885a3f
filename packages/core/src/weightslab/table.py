"""The sample table: one row per ``(split, sample_id)``, columnar numpy storage.

Rows are appended (never removed); every column is a numpy array grown geometrically.
Readers take a :class:`~weightslab.query.frame.Frame` snapshot; writers hold the
experiment lock.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from weightslab.narrow import FLOAT32_WHOLE, fits_float32, put

_MIN_CAPACITY = 1024


def normalize_id(sample_id: Any) -> str:
    """Ids are keyed as text so that ``7``, ``np.int64(7)`` and ``"7"`` name the same sample."""
    if isinstance(sample_id, (bytes, bytearray)):
        return sample_id.decode()
    if isinstance(sample_id, float) and sample_id.is_integer():
        return str(int(sample_id))
    if hasattr(sample_id, "item") and not isinstance(sample_id, str):
        sample_id = sample_id.item()
        if isinstance(sample_id, float) and sample_id.is_integer():
            return str(int(sample_id))
    return str(sample_id)


def ids_to_list(ids: Any) -> list[str]:
    """Batch ids (tensor, array, list) -> list of text ids."""
    if hasattr(ids, "detach"):
        ids = ids.detach().cpu().numpy()
    if isinstance(ids, np.ndarray):
        if ids.dtype.kind in "iu":
            return [str(v) for v in ids.tolist()]
        return [normalize_id(v) for v in ids.tolist()]
    if isinstance(ids, (str, bytes, int)):
        raise TypeError(f"batch_ids must be a sequence of ids, got a single {type(ids).__name__}")
    return [normalize_id(v) for v in ids]


class UnknownSamples(KeyError):
    """An edit named sample ids that are not in the table."""

    def __init__(self, missing: Sequence[str]) -> None:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        super().__init__(f"unknown sample ids ({len(missing)}): {shown}")
        self.missing = list(missing)

    def __str__(self) -> str:
        return str(self.args[0])


class _RowIndex:
    """``(split, sample_id) -> row`` without a Python object per row.

    Decimal ids (``"0"``, ``"17"``: what a watched loader numbers its samples with) are slots of
    one int32 array per split (4 bytes a row, -1 = absent); other ids live in a per-split dict.
    A dict keyed by ``(split, id)`` tuples cost about 140 bytes a row (tuple, entry, int object).
    Reads like the mapping it replaces: ``key in index``, ``index[key]``, ``get``, ``items``.
    """

    def __init__(self) -> None:
        self._dense: dict[str, np.ndarray] = {}
        self._named: dict[str, dict[str, int]] = {}
        self._counts: dict[str, int] = {}

    @staticmethod
    def _number(sid: str) -> int:
        if sid.isdigit() and sid.isascii() and len(sid) < 19 and (len(sid) == 1 or sid[0] != "0"):
            return int(sid)
        return -1

    def get(self, key: tuple[str, str], default: int | None = None) -> int | None:
        split, sid = key
        num = self._number(sid) if isinstance(sid, str) else -1
        dense = self._dense.get(split)
        if num >= 0 and dense is not None and num < len(dense):
            row = int(dense[num])
            if row >= 0:
                return row
        named = self._named.get(split)
        return named.get(sid, default) if named is not None else default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and len(key) == 2 and self.get(key) is not None

    def __getitem__(self, key: tuple[str, str]) -> int:
        row = self.get(key)
        if row is None:
            raise KeyError(key)
        return row

    def __setitem__(self, key: tuple[str, str], row: int) -> None:
        split, sid = key
        count = self._counts.get(split, 0)
        num = self._number(sid)
        if 0 <= num < max(1 << 20, 4 * (count + 1)):  # dense while the numbering is compact
            self._dense_set(split, num, row, num)
        else:
            self._named.setdefault(split, {})[sid] = row
        self._counts[split] = count + 1

    def _dense_set(self, split: str, nums: Any, rows: Any, high: int) -> None:
        self._dense[split] = put(self._dense_for(split, high), nums, rows)  # int64 past int32 rows

    def add_dense(self, split: str, nums: np.ndarray, rows: np.ndarray) -> None:
        """Index many new decimal ids at once; ids beyond the dense bound go to the dict one by one."""
        count = self._counts.get(split, 0)
        bound = max(1 << 20, 4 * (count + len(nums)))
        far = nums >= bound
        if far.any():
            for num, row in zip(nums[far].tolist(), rows[far].tolist(), strict=True):
                self[(split, str(num))] = row
            nums, rows = nums[~far], rows[~far]
        if len(nums):
            self._dense_set(split, nums, rows, int(nums.max()))
            self._counts[split] = self._counts.get(split, 0) + len(nums)

    def _dense_for(self, split: str, high: int) -> np.ndarray:
        """The split's dense slots (int32 rows: 4 bytes a slot), grown (doubling) to hold the id ``high``."""
        dense = self._dense.get(split)
        if dense is None or high >= len(dense):
            grown = np.full(max(high + 1, 2 * len(dense) if dense is not None else 1024), -1,
                            dense.dtype if dense is not None else np.int32)
            if dense is not None:
                grown[: len(dense)] = dense
            dense = self._dense[split] = grown
        return dense

    def items(self) -> Iterator[tuple[tuple[str, str], int]]:
        for split, dense in self._dense.items():
            for num in np.flatnonzero(dense >= 0).tolist():
                yield (split, str(num)), int(dense[num])
        for split, named in self._named.items():
            for sid, row in named.items():
                yield (split, sid), row

    def __len__(self) -> int:
        return sum(self._counts.values())


class IdColumn:
    """The table's ``sample_id`` column, read like an object array of text: ``col[rows]``,
    ``col[:n]``, ``col[row]``.

    A decimal id (``"0"``, ``"17"``: what a numbering loader gives) is its row's ``int_id``, with no
    string object per row (~60 bytes a row); only other ids are kept as text. A read spells out
    the rows it asks for, so a page of 20 rows costs 20 strings, not a million.
    """

    dtype = np.dtype(object)

    def __init__(self, table: SampleTable) -> None:
        self._table = table
        self._text: np.ndarray | None = None  # object array, made when a non-decimal id arrives

    def __len__(self) -> int:
        return self._table._cap

    def _grow(self, cap: int, n: int) -> None:
        if self._text is not None:
            grown = np.full(cap, None, dtype=object)
            grown[:n] = self._text[:n]
            self._text = grown

    def __getitem__(self, index: Any) -> Any:
        return _spell_ids(self._table.int_id, self._text, index)

    def __setitem__(self, row: int, sample_id: str) -> None:
        if isinstance(sample_id, str) and _RowIndex._number(sample_id) >= 0:
            return  # spelled from int_id, which the caller sets
        if self._text is None:
            self._text = np.full(self._table._cap, None, dtype=object)
        self._text[row] = sample_id

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def view(self, sel: Any) -> IdsView:
        """The ids of ``sel`` for a query frame, spelled out only if the frame needs them all."""
        ints = self._table.int_id[sel]
        text = self._text[sel] if self._text is not None else None
        return IdsView(ints, text)


def _spell_ids(ints: np.ndarray, text: np.ndarray | None, index: Any) -> Any:
    """The ids at ``index`` as text (one ``str``, or an object array): decimal ids from ``ints``,
    the others (``ints`` -1) from ``text``; None where a row has neither (room beyond the rows)."""
    picked = ints[index]
    if np.ndim(picked) == 0:
        if picked >= 0:
            return str(int(picked))
        return text[index] if text is not None else None
    out = np.empty(picked.shape, dtype=object)
    decimal = picked >= 0
    out[decimal] = picked[decimal].astype(str)  # numpy's decimal text, as Python str objects
    if text is not None and not decimal.all():
        out[~decimal] = text[index][~decimal]
    return out


class IdsView:
    """Ids of a frame's rows as the table keeps them (see :class:`IdColumn`); ``Frame`` spells
    them out on first use of ``frame.sample_id``, and pages read :meth:`at` instead."""

    def __init__(self, ints: np.ndarray, text: np.ndarray | None) -> None:
        self.ints, self.text = ints, text

    def __len__(self) -> int:
        return len(self.ints)

    @property
    def all_decimal(self) -> bool:
        return self.text is None or bool((self.ints >= 0).all())

    def at(self, idx: Any) -> Any:
        return _spell_ids(self.ints, self.text, idx)

    def spell(self) -> np.ndarray:
        return self.at(slice(None))


class SplitColumn:
    """The table's ``split`` column, read like an object array of text (``col[rows]``, ``col[:n]``,
    ``col[row]``), kept as the rows' ``split_code`` (1 byte a row, not an 8-byte pointer)."""

    dtype = np.dtype(object)

    def __init__(self, table: SampleTable) -> None:
        self._table = table

    def __len__(self) -> int:
        return self._table._cap

    def __getitem__(self, index: Any) -> Any:
        return split_names_array(self._table.split_names)[self._table.split_code[index]]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def split_names_array(names: list[str]) -> np.ndarray:
    """``names`` as an object array with ``None`` last: indexing it with codes (-1 = none) spells them."""
    out = np.empty(len(names) + 1, dtype=object)
    out[: len(names)] = names
    return out


class SplitView:
    """The splits of a frame's rows as codes into names (see :class:`SplitColumn`); ``Frame`` spells
    them out on first use of ``frame.split``, and pages read :meth:`at` instead."""

    def __init__(self, codes: np.ndarray, names: list[str]) -> None:
        self.codes, self._names = codes, split_names_array(names)

    def __len__(self) -> int:
        return len(self.codes)

    def at(self, idx: Any) -> Any:
        return self._names[self.codes[idx]]

    def spell(self) -> np.ndarray:
        return self.at(slice(None))


class SampleTable:
    def __init__(self) -> None:
        self._index = _RowIndex()
        self.n = 0
        self._cap = 0
        self.sample_id = IdColumn(self)
        # The id as an integer where it is one in decimal (-1 otherwise): lets writers hand whole
        # batches of ids to the store as one int64 array instead of one text object per sample.
        self.int_id = np.empty(0, dtype=np.int32)  # int32 while every id fits (widened by _set_int_ids)
        # index into split_names (query frames' split codes): int8, widened past 127 splits
        self.split_code = np.empty(0, dtype=np.int8)
        self.split_names: list[str] = []
        self.split = SplitColumn(self)
        self.discarded = np.zeros(0, dtype=bool)
        # Float columns (so query frames can use views instead of copies), float32 while every value
        # is exactly a float32 (whole numbers up to 2**24, float32 losses), widened to float64 by
        # the first value that is not: 4 bytes a row instead of 8, the same values either way.
        self.last_seen_step = np.zeros(0, dtype=np.float32)
        self.seen_count = np.zeros(0, dtype=np.float32)
        self.numeric: dict[str, np.ndarray] = {}  # label, prediction, signals, metadata (float32/64)
        self._widened = 0  # columns widened to float64: query frames made before hold the old arrays
        self.text: dict[str, np.ndarray] = {}  # object columns (non-numeric labels, metadata)
        self.tags: dict[str, np.ndarray] = {}
        self.categories: dict[str, np.ndarray] = {}
        self.signal_names: list[str] = []
        self._split_counts: dict[str, int] = {}
        self.version = 0  # bumped on every change; lets readers cache snapshots
        self._frame_key: tuple[Any, ...] | None = None
        self._frame: Any = None

    # -- growth -------------------------------------------------------------
    def _grow(self, needed: int) -> None:
        if needed <= self._cap:
            return
        cap = max(_MIN_CAPACITY, self._cap)
        while cap < needed:
            cap *= 2

        def grow(arr: np.ndarray, fill: Any) -> np.ndarray:
            out = np.full(cap, fill, dtype=arr.dtype)
            out[: self.n] = arr[: self.n]
            return out

        self.sample_id._grow(cap, self.n)
        self.int_id = grow(self.int_id, -1)
        self.split_code = grow(self.split_code, -1)
        self.discarded = grow(self.discarded, False)
        self.last_seen_step = grow(self.last_seen_step, -1)
        self.seen_count = grow(self.seen_count, 0)
        self.numeric = {k: grow(v, np.nan) for k, v in self.numeric.items()}
        self.text = {k: grow(v, None) for k, v in self.text.items()}
        self.tags = {k: grow(v, False) for k, v in self.tags.items()}
        self.categories = {k: grow(v, None) for k, v in self.categories.items()}
        self._cap = cap

    def _numeric_column(self, name: str, values: np.ndarray) -> np.ndarray:
        """The column ``name`` (made float32 when new), widened to float64 if ``values`` need it."""
        col = self.numeric.get(name)
        if col is None:
            col = np.full(self._cap, np.nan, dtype=np.float32)
            self.numeric[name] = col
        if col.dtype == np.float32 and not fits_float32(values):
            col = self.numeric[name] = self._widen(col)
        return col

    def _widen(self, col: np.ndarray) -> np.ndarray:
        self._widened += 1
        return col.astype(np.float64)

    def _text_column(self, name: str) -> np.ndarray:
        col = self.text.get(name)
        if col is None:
            col = np.full(self._cap, None, dtype=object)
            self.text[name] = col
        return col

    # -- rows ---------------------------------------------------------------
    def rows(self, split: str, ids: Iterable[str], *, create: bool = True) -> np.ndarray:
        """Row indices of ``ids`` in ``split``; unknown ids are added when ``create``."""
        index = self._index
        out: list[int] = []
        missing: list[str] = []
        for sid in ids:
            row = index.get((split, sid))
            if row is None:
                if not create:
                    missing.append(sid)
                    continue
                row = self.n
                self._grow(row + 1)
                index[(split, sid)] = row
                self.sample_id[row] = sid
                self._set_int_ids(row, _RowIndex._number(sid) if isinstance(sid, str) else -1)
                self._set_split(row, split)
                self.n += 1
                self._split_counts[split] = self._split_counts.get(split, 0) + 1
            out.append(row)
        if missing:
            raise UnknownSamples(missing)
        self.version += 1
        return np.asarray(out, dtype=np.int64)

    def int_rows(self, split: str, ids: np.ndarray, *, create: bool = True) -> np.ndarray:
        """:meth:`rows` of integer ids (the id ``7`` is ``"7"``), vectorised: a whole batch of known
        decimal ids is one array lookup; only ids not found that way go through :meth:`rows`."""
        ids = np.asarray(ids).reshape(-1)
        if create and split not in self._split_counts and len(ids) and int(ids.min()) >= 0:
            return self._add_numbered(split, ids)  # a new split (a loader registering): every id is new
        out = np.full(len(ids), -1, dtype=np.int64)
        dense = self._index._dense.get(split)
        if dense is not None and len(ids):
            ok = (ids >= 0) & (ids < len(dense))
            out[ok] = dense[ids[ok]]
        missing = np.flatnonzero(out < 0)
        if len(missing) and create and not self._index._named.get(split) and int(ids[missing].min()) >= 0:
            out[missing] = self._add_numbered(split, ids[missing])
            missing = missing[:0]
        if len(missing):
            out[missing] = self.rows(split, [str(v) for v in ids[missing].tolist()], create=create)
        else:
            self.version += 1  # as rows() does
        return out

    def _add_numbered(self, split: str, ids: np.ndarray) -> np.ndarray:
        """Rows for non-negative integer ids none of which is in ``split`` yet, added in one pass
        (rows in order of first appearance, as :meth:`rows` numbers them): registering a
        million-sample loader is array work, not a million dictionary inserts."""
        start = self.n
        if len(ids) < 2 or bool((ids[1:] > ids[:-1]).all()):  # e.g. a loader's 0..n-1: distinct, in order
            new_ids, out = ids, np.arange(start, start + len(ids), dtype=np.int64)
        else:
            uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
            by_appearance = np.argsort(first, kind="stable")
            new_ids = uniq[by_appearance]
            row_of_uniq = np.empty(len(uniq), dtype=np.int64)
            row_of_uniq[by_appearance] = np.arange(start, start + len(uniq))
            out = row_of_uniq[inverse.reshape(-1)]
        k = len(new_ids)
        self._grow(start + k)
        self._index.add_dense(split, new_ids, out if new_ids is ids else np.arange(start, start + k, dtype=np.int64))
        sel = slice(start, start + k)
        self._set_int_ids(sel, new_ids)  # the ids' text is spelled from these (IdColumn)
        self._set_split(sel, split)
        self.n += k
        self._split_counts[split] = self._split_counts.get(split, 0) + k
        self.version += 1
        return out

    def _set_split(self, where: Any, split: str) -> None:
        if split not in self.split_names:
            self.split_names.append(split)
        code = self.split_names.index(split)
        if code > np.iinfo(self.split_code.dtype).max:
            self.split_code = self.split_code.astype(np.int32)
        self.split_code[where] = code

    def _set_int_ids(self, where: Any, ids: Any) -> None:
        """Write ``int_id`` entries, widening the column to int64 for an id past int32 (content-hash
        numbers, say): a loader's 0..n-1 costs 4 bytes a row."""
        self.int_id = put(self.int_id, where, ids)

    def store_ids(self, rows: np.ndarray) -> np.ndarray:
        """Sample ids of ``rows`` for the sample store: int64 when every one is a decimal integer
        (the store keys ``7`` and ``"7"`` alike), else the text objects."""
        ints = self.int_id[rows].astype(np.int64)
        return ints if len(ints) and ints.min() >= 0 else self.sample_id[rows]

    def find(self, ids: Iterable[str], split: str | None = None) -> np.ndarray:
        """Rows of ``ids`` in ``split`` (any split when None); raises :class:`UnknownSamples`."""
        if split is not None:
            return self.rows(split, ids, create=False)
        wanted = set(ids)
        if not wanted:
            return np.zeros(0, dtype=np.int64)
        found = [row for split in self._split_counts for sid in wanted
                 if (row := self._index.get((split, sid))) is not None]
        seen = {self.sample_id[row] for row in found}
        missing = sorted(wanted - seen)
        if missing:
            raise UnknownSamples(missing)
        return np.asarray(sorted(found), dtype=np.int64)

    def splits(self) -> dict[str, int]:
        """Rows per split (kept up to date as rows are added)."""
        return dict(sorted(self._split_counts.items()))

    # -- writes -------------------------------------------------------------
    def set_numeric(self, name: str, rows: np.ndarray, values: Any) -> None:
        values = np.asarray(values)
        self._numeric_column(name, values)[rows] = values
        self.version += 1

    def set_text(self, name: str, rows: np.ndarray, values: Sequence[Any]) -> None:
        col = self._text_column(name)
        for row, value in zip(rows.tolist(), values, strict=True):
            col[row] = value
        self.version += 1

    def set_labels(self, rows: np.ndarray, labels: np.ndarray) -> None:
        labels = np.asarray(labels)
        if labels.ndim == 1 and labels.dtype.kind in "biuf":
            self.set_numeric("label", rows, labels)
        else:
            self.set_text("label", rows, [_scalar_or_list(v) for v in labels])

    def set_predictions(self, rows: np.ndarray, preds: np.ndarray) -> None:
        preds = np.asarray(preds)
        if preds.ndim == 1 and preds.dtype.kind in "biuf":
            self.set_numeric("prediction", rows, preds)
        else:
            self.set_text("prediction", rows, [_scalar_or_list(v) for v in preds])

    def set_signal(self, name: str, rows: np.ndarray, values: np.ndarray) -> None:
        if name not in self.signal_names:
            check_text(name, "signal name")
            self.signal_names.append(name)
        self.set_numeric(name, rows, values)

    def mark_seen(self, rows: np.ndarray, step: int) -> None:
        if self.last_seen_step.dtype == np.float32 and not fits_float32(np.asarray([step])):
            self.last_seen_step = self._widen(self.last_seen_step)
        self.last_seen_step[rows] = step
        if self.seen_count.dtype == np.float32 and len(rows) and \
                float(self.seen_count[rows].max()) + len(rows) >= FLOAT32_WHOLE:
            self.seen_count = self._widen(self.seen_count)  # counting on past 2**24 would stall
        np.add.at(self.seen_count, rows, 1)
        self.version += 1

    def tag_count(self) -> int:
        """Tag plus categorical-tag columns (what ``WL_MAX_TAGS`` caps)."""
        return len(self.tags) + len(self.categories)

    def set_tag(self, name: str, rows: np.ndarray, value: bool, *, max_tags: int = 0) -> np.ndarray:
        """Set a boolean tag; returns the rows that actually changed.

        No column is created for an empty ``rows`` (an edit that matched nothing) or for
        clearing a tag that does not exist; a new column beyond ``max_tags`` (0 = no cap) is refused.
        """
        check_name(name, "tag")
        col = self.tags.get(name)
        if col is None:
            if len(rows) == 0 or not value:
                return rows[:0]
            self._check_cap(name, max_tags)
            col = np.zeros(self._cap, dtype=bool)
            self.tags[name] = col
        changed = rows[col[rows] != value]
        col[rows] = value
        self.version += 1
        return changed

    def set_category(self, name: str, rows: np.ndarray, value: str | None, *, max_tags: int = 0) -> np.ndarray:
        check_name(name, "categorical tag")
        if value is not None:
            check_text(value, f"categorical tag {name!r} value")
        col = self.categories.get(name)
        if col is None:
            if len(rows) == 0 or value is None:
                return rows[:0]
            self._check_cap(name, max_tags)
            col = np.full(self._cap, None, dtype=object)
            self.categories[name] = col
        changed = rows[np.array([col[r] != value for r in rows.tolist()], dtype=bool)] if len(rows) else rows
        col[rows] = value
        self.version += 1
        return changed

    def _check_cap(self, name: str, max_tags: int) -> None:
        if max_tags and self.tag_count() >= max_tags:
            raise TooManyTags(f"tag {name!r}: the table already has {self.tag_count()} tag columns, the "
                              f"maximum (WL_MAX_TAGS={max_tags}); untagging does not "
                              "remove a column, so reuse an existing tag or raise the limit")

    def set_discarded(self, rows: np.ndarray, value: bool) -> np.ndarray:
        changed = rows[self.discarded[rows] != value]
        self.discarded[rows] = value
        self.version += 1
        return changed

    # -- reads --------------------------------------------------------------
    def frame(self, rows: np.ndarray | None = None, *, copy: bool = False) -> Any:
        """A query :class:`Frame` over the first ``n`` rows (or ``rows``).

        Without ``copy`` the columns are views: cheap at 1M rows, fixed row count, but values
        written later (new losses) may show up while the frame is read. That never breaks a
        query; pass ``copy=True`` for an immutable snapshot (exports).
        """
        from weightslab.query.frame import Frame

        key = (self.n, self._cap, self._widened, tuple(self.numeric), tuple(self.text), tuple(self.tags),
               tuple(self.categories))
        if rows is None and not copy and key == self._frame_key:
            return self._frame  # same rows and columns: its views already show the latest values
        sel: Any = slice(0, self.n) if rows is None else rows

        def take(arr: np.ndarray) -> np.ndarray:
            out = arr[sel]
            return out.copy() if copy and rows is None else out

        def take_float(arr: np.ndarray) -> np.ndarray:  # a snapshot is float64, as it always was
            return arr[sel].astype(np.float64) if copy else take(arr)

        columns: dict[str, np.ndarray] = {k: take_float(v) for k, v in self.numeric.items()}
        columns.update({k: take(v) for k, v in self.text.items()})
        columns["last_seen_step"] = take_float(self.last_seen_step)
        columns["seen_count"] = take_float(self.seen_count)
        ids = self.sample_id.view(sel)
        splits = SplitView(self.split_code[sel], self.split_names)
        frame = Frame(
            sample_id=ids.spell() if copy else ids,
            split=splits.spell() if copy else splits,
            discarded=take(self.discarded),
            columns=columns,
            tags={k: take(v) for k, v in self.tags.items()},
            categories={k: take(v) for k, v in self.categories.items()},
        )
        if rows is None:  # the split codes the table keeps (sorted names, as Frame.split_codes gives)
            names = sorted(self.split_names)
            codes = self.split_code[: self.n]
            if names == self.split_names:  # the table's own codes, shared: no 4-8 bytes a row per frame
                frame.set_split_codes(names, codes)
            else:  # renumbered when first asked (most queries never read them)
                lut = np.asarray([names.index(name) for name in self.split_names], dtype=codes.dtype)
                frame.set_split_codes(names, lambda: lut[codes])
        if rows is None and not copy:
            self._frame_key, self._frame = key, frame
        return frame

    def row_tags(self, row: int) -> list[str]:
        return sorted(name for name, col in self.tags.items() if col[row])


def _scalar_or_list(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class TooManyTags(ValueError):
    """A tag edit would create more tag columns than ``WL_MAX_TAGS`` allows."""


def _bad_char(text: str) -> str | None:
    """The first control character (NUL, newline, DEL, C1) or lone surrogate in ``text``, if any.

    Such names cannot be stored in HDF5 attributes/datasets (a NUL ends a C string, a surrogate
    is not UTF-8), so they are refused before they reach any store.
    """
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cs"):
            return char
    return None


def check_text(value: str, what: str) -> None:
    """Refuse text with control characters (column names, categorical values) with a clear error."""
    if not isinstance(value, str):
        raise ValueError(f"{what} {value!r}: expected text")
    bad = _bad_char(value)
    if bad is not None:
        raise ValueError(f"{what} {value!r}: contains the control character U+{ord(bad):04X}; "
                         "expected printable text (no NUL, newline, tab or other control characters)")


def check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "=,\n"):
        raise ValueError(f"{what} name {name!r}: expected non-empty text without '=', ',' or newlines")
    check_text(name, f"{what} name")
