"""A read-only sequence of text made on demand, a slice at a time (no string per item kept).

Subclasses give ``__len__`` and ``_spell(start, stop)``; indexing, slicing and iteration follow
``list[str]``. Used for a loader's numbered ids and for a sample store's dictionary entries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

_ITER_SLICE = 1 << 16  # items spelled out at a time while iterating


class SpelledSequence(Sequence[str]):
    def __len__(self) -> int:
        raise NotImplementedError

    def _spell(self, start: int, stop: int) -> list[str]:
        """Items ``start .. stop - 1`` (``0 <= start <= stop <= len``)."""
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            start, stop, stride = index.indices(len(self))
            if stride == 1:
                return self._spell(start, max(start, stop))
            return [self[i] for i in range(start, stop, stride)]
        i = range(len(self))[index]  # negative indices, and IndexError past the end
        return self._spell(i, i + 1)[0]

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), _ITER_SLICE):
            yield from self._spell(start, min(len(self), start + _ITER_SLICE))
