"""Append-only string dictionaries: sample ids and names become small integer codes.

Sample ids are text (an int id is its decimal form, so ``7`` and ``"7"`` share a code).
Codes are assigned once and never change, so a store only ever appends new entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from weightslab.narrow import put
from weightslab.spelled import SpelledSequence

# Int ids below this bound (or a few times the dictionary size) use a dense lookup table.
_DENSE_MIN = 1 << 22


def _grown(size: int, needed: int) -> int:
    """A new capacity for ``needed`` entries: by a quarter at a time (amortised O(1) appends, at
    most a quarter unused; doubling left up to half of a million-entry array empty)."""
    return max(needed, size + size // 4, 1024)


def id_text(value: Any) -> str:
    """Canonical text of one sample id or name."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _decimal(text: str) -> int:
    """The int whose canonical decimal text is ``text``, else -1."""
    if text.isdigit() and text.isascii() and len(text) < 19 and (len(text) == 1 or text[0] != "0"):
        return int(text)
    return -1


def _canonical_ints(values: np.ndarray) -> np.ndarray | None:
    """``values`` (text or object) as int64 when every entry is the canonical decimal text (or int)
    of a non-negative integer, i.e. ``id_text(v) == str(int)``; else None."""
    if values.dtype.kind not in "OU" or values.size < 64:
        return None
    try:
        ints = values.astype(np.int64)
    except (ValueError, TypeError, OverflowError):
        return None
    if ints.min() < 0 or not bool((ints.astype(str) == values.astype(str)).all()):
        return None  # " 7", "07", 7.0, True...: their own text, coded one by one
    return ints


def _distinct(values: np.ndarray) -> tuple[list[Any], np.ndarray] | None:
    """``(distinct values in order of first appearance, index of each value among them)`` for a
    large array of text that repeats; None when it does not pay (few rows, mostly distinct) or
    the values do not sort (mixed types)."""
    if values.size < 64 or values.dtype.kind not in "OU":
        return None
    first = values[0]
    if isinstance(first, str) and bool((values == first).all()):  # one value (a split's name): no sort
        return [first], np.zeros(values.size, dtype=np.int64)
    try:
        uniq, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    except TypeError:
        return None
    if len(uniq) * 4 > values.size or not all(isinstance(v, str) for v in uniq.tolist()):
        return None
    order = np.argsort(first, kind="stable")  # codes handed out in order of appearance, as one by one
    position = np.empty(len(uniq), dtype=np.int64)
    position[order] = np.arange(len(uniq))
    return uniq[order].tolist(), position[inverse.reshape(-1)]


class Entries(SpelledSequence):
    """Entries ``start .. stop`` of a codec, spelled out a slice at a time: writing a million new ids
    never holds a million strings at once (their small allocations stay in the process's heap
    long after they are freed). Valid until the codec changes those entries (rollback)."""

    def __init__(self, codec: Codec, start: int, stop: int) -> None:
        self.codec, self.start, self.stop = codec, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def _spell(self, start: int, stop: int) -> list[str]:
        return self.codec._spell(self.start + start, self.start + stop)

    def packed(self, start: int, stop: int) -> np.ndarray | None:
        """Entries ``start .. stop - 1`` as ASCII bytes (``S`` array) when each is a numbered id,
        else None: a million numbered ids are written without a Python string each."""
        nums = self.codec._nums(self.start + start, self.start + stop)
        return nums.astype(np.bytes_) if not (nums < 0).any() else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"Entries({list(self)!r})"


class Codec:
    """Text -> code dictionary that only grows.

    ``pending()`` returns the entries added since the last ``mark_committed()`` so the
    writer persists each entry exactly once.

    An entry that is the decimal text of an int (a loader's ``"0" .. "n-1"``) is kept as that
    int: 4 bytes in ``_num`` (8 once an id passes int32), no string object (a million string entries cost ~60 MB). Only
    other text lives in ``_texts``; ``strings``/``pending()`` spell entries out when asked.

    While every entry is the int equal to its code (ids ``0 .. n-1`` coded in order, as a numbered
    loader's are), ``_num`` and ``_dense`` would both be the identity: they are not stored
    (``_identity``; 8 bytes a sample less) until an entry breaks it (:meth:`_materialise`).
    """

    def __init__(self, existing: Iterable[str] = ()) -> None:
        self._num = np.full(0, -1, dtype=np.int32)  # per code: the int it stands for, -1 = text entry
        self._size = 0
        self._texts: dict[int, str] = {}  # code -> text, for entries that are not decimal ints
        # text -> code: text entries, and ints coded before the dense table covered them
        self._codes: dict[str, int] = {}
        self._dense = np.full(0, -1, dtype=np.int32)  # int id -> code (codes stay below 2**31)
        self._identity = True  # entry c is the int c for every code: _num and _dense left empty
        entries = list(existing)
        if entries:
            self._load(entries)
        self._committed = self._size

    def _load(self, entries: list[str]) -> None:
        """Entries read back from a store, in code order."""
        values = np.empty(len(entries), dtype=object)
        values[:] = entries
        ints = _canonical_ints(values)
        nums = ints if ints is not None else np.fromiter(
            (_decimal(t) for t in entries), dtype=np.int64, count=len(entries))
        numbered = nums[nums >= 0]
        if len(np.unique(numbered)) != len(numbered) or len(set(entries)) != len(entries):
            raise ValueError("duplicate entries in a string dictionary")
        if np.array_equal(nums, np.arange(len(entries))):
            self._size = len(entries)
            return
        self._identity = False
        self._reserve(len(entries))
        self._set_num(slice(0, len(entries)), nums)
        self._size = len(entries)
        codes = np.arange(len(entries), dtype=np.int64)
        bound = max(_DENSE_MIN, 4 * len(entries))
        dense = (nums >= 0) & (nums < bound)
        if dense.any():
            self._grow_dense(int(nums[dense].max()))
            self._dense[nums[dense]] = codes[dense]
        for code in np.flatnonzero(~dense).tolist():
            text = entries[code]
            self._codes[text] = code
            if nums[code] < 0:
                self._texts[code] = text

    def __len__(self) -> int:
        return self._size

    def _nums(self, start: int, stop: int) -> np.ndarray:
        """The ints entries ``start .. stop - 1`` stand for (-1: a text entry)."""
        return np.arange(start, stop) if self._identity else self._num[start:stop]

    def _materialise(self) -> None:
        """Store ``_num`` and ``_dense`` (the identity so far): an entry is about to break it.

        Built aside and switched to last: a reader in another thread (a store's ``load()`` spells
        entries while the flusher codes new ones) sees the identity or the full tables, never a
        table half filled."""
        if not self._identity:
            return
        n = self._size
        dtype = np.int32 if n < np.iinfo(np.int32).max else np.int64
        num: np.ndarray = np.full(_grown(0, n) if n else 0, -1, dtype=dtype)
        num[:n] = np.arange(n)
        dense: np.ndarray = np.full(num.size, -1, dtype=dtype)
        dense[:n] = np.arange(n)
        self._num, self._dense = num, dense
        self._identity = False

    def _spell(self, start: int, stop: int) -> list[str]:
        nums = self._nums(start, stop)
        out: list[str] = nums.astype(str).tolist()  # numpy's decimal text: one C loop
        for i in np.flatnonzero(nums < 0).tolist():
            out[i] = self._texts[start + i]
        return out

    @property
    def strings(self) -> list[str]:
        """Every entry as text, in code order (built on each call: for reloading, not per batch)."""
        return self._spell(0, self._size)

    def table(self) -> np.ndarray:
        """Object array of every entry; ``table()[codes]`` decodes."""
        out = np.empty(self._size, dtype=object)
        out[:] = self.strings
        return out

    def _reserve(self, size: int) -> None:
        if size >= np.iinfo(np.int32).max and self._dense.dtype == np.int32:  # codes past int32 (never in practice)
            self._dense = self._dense.astype(np.int64)
        if size > self._num.size:
            grown = np.full(_grown(self._num.size, size), -1, dtype=self._num.dtype)
            grown[: self._size] = self._num[: self._size]
            self._num = grown

    def _set_num(self, where: Any, nums: Any) -> None:
        self._num = put(self._num, where, nums)  # an id past int32: the column widens

    def _grow_dense(self, high: int) -> None:
        if high >= self._dense.size:
            grown = np.full(_grown(self._dense.size, high + 1), -1, dtype=self._dense.dtype)
            grown[: self._dense.size] = self._dense
            self._dense = grown

    def code(self, value: Any) -> int:
        text = id_text(value)
        num = _decimal(text)
        if self._identity:
            if 0 <= num <= self._size:  # a known id, or the next one: still the identity
                self._size = max(self._size, num + 1)
                return num
            self._materialise()
        if 0 <= num < self._dense.size and self._dense[num] >= 0:
            return int(self._dense[num])
        found = self._codes.get(text)
        if found is None:
            found = self._size
            self._reserve(found + 1)
            self._set_num(found, num)
            self._size += 1
            if 0 <= num < self._dense.size:
                self._dense[num] = found
            else:
                self._codes[text] = found
                if num < 0:
                    self._texts[found] = text
        return found

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Codes (int64) of an array of ids; new ids get new codes."""
        values = np.asarray(values)
        if values.ndim != 1:
            values = values.reshape(-1)
        if values.dtype.kind in "iu" and values.size:
            return self._encode_ints(values)
        ints = _canonical_ints(values)
        if ints is not None:  # decimal text ids (e.g. a table's rows): vectorised, not one code() per id
            return self._encode_ints(ints)
        distinct = _distinct(values)
        if distinct is not None:  # e.g. a split name repeated on a million rows: one code() per name
            uniq, inverse = distinct
            return np.fromiter((self.code(v) for v in uniq), dtype=np.int64, count=len(uniq))[inverse]
        return np.fromiter((self.code(v) for v in values.tolist()), dtype=np.int64, count=values.size)

    def _encode_ints(self, values: np.ndarray) -> np.ndarray:
        low, high = int(values.min()), int(values.max())
        if self._identity:
            if low >= 0 and high < max(_DENSE_MIN, 4 * self._size) and self._extends_identity(values, high):
                return values.astype(np.int64)  # a copy, as the tables' lookup gives: the caller may reuse values
            self._materialise()
        if low < 0 or high >= max(_DENSE_MIN, 4 * self._size):
            return np.fromiter((self.code(v) for v in values.tolist()), dtype=np.int64, count=values.size)
        self._grow_dense(high)
        codes = self._dense[values]
        missing = codes < 0
        if missing.any():
            # The distinct missing ids in ascending order (np.unique's), marked on a bitmap of the
            # range instead of sorted: a million ids cost 1 MB of flags, not a sort's copies.
            flags = np.zeros(high - low + 1, dtype=bool)
            flags[values[missing] - low] = True
            new = np.flatnonzero(flags) + low
            del flags
            self._dense[new] = self._codes_of_ints(new)
            codes = self._dense[values]
        return codes.astype(np.int64, copy=False)

    def _extends_identity(self, values: np.ndarray, high: int) -> bool:
        """Whether the ids in ``values`` not coded yet are exactly ``_size .. high`` (then they get
        those codes, as the dense path below would give them in ascending order); if so, coded."""
        size = self._size
        if high >= size:
            flags = np.zeros(high - size + 1, dtype=bool)
            flags[values[values >= size] - size] = True
            if not flags.all():
                return False
            self._size = high + 1
        return True

    def _codes_of_ints(self, new: np.ndarray) -> np.ndarray:
        """Codes of distinct ints missing from the dense table: an entry of the dict (an id coded
        before the table covered it) or a new code, kept in the dense table only (no dict entry,
        string or int object per id)."""
        found = np.full(len(new), -1, dtype=np.int64)
        if self._codes:
            get = self._codes.get
            found[:] = [get(t, -1) for t in new.astype(str).tolist()]
        fresh = np.flatnonzero(found < 0)
        found[fresh] = np.arange(self._size, self._size + len(fresh))
        self._reserve(self._size + len(fresh))
        self._set_num(slice(self._size, self._size + len(fresh)), new[fresh])
        self._size += len(fresh)
        return found

    def pending(self) -> tuple[int, Sequence[str]]:
        """(code of the first uncommitted entry, uncommitted entries, spelled out as they are read)."""
        return self._committed, Entries(self, self._committed, self._size)

    def mark_committed(self, upto: int) -> None:
        self._committed = max(self._committed, upto)

    def rollback(self) -> None:
        """Forget the uncommitted entries (a write that failed): the next write re-encodes.

        Without this an entry that cannot be stored (text with a NUL) would travel with every
        later segment and make every later write fail too.
        """
        if self._identity:  # the entries past the committed ones are the ints past them
            self._size = self._committed
            return
        for text in self._spell(self._committed, self._size):
            self._codes.pop(text, None)  # ints in the dense table have no dict entry
        for code in range(self._committed, self._size):
            self._texts.pop(code, None)
        self._num[self._committed: self._size] = -1
        self._size = self._committed
        if self._dense.size:
            self._dense[self._dense >= self._committed] = -1
