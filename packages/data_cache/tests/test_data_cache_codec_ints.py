"""Sample-id codes: integer ids (dense table, no dict entry per id) and their decimal text share
one code, whatever order they arrive in, across rollbacks (issue 19)."""

from __future__ import annotations

import numpy as np
from weightslab_data_cache.codec import Codec


def test_int_and_text_ids_share_codes_in_any_order() -> None:
    codec = Codec(["a", "12"])  # a reloaded store: "12" known as text
    first = codec.encode(np.array([5, 12, 3, 5]))
    assert first.tolist() == [3, 1, 2, 3]  # new ids coded in sorted order
    assert codec.encode(np.array(["3", "a", "12", "7", "05"], dtype=object)).tolist() == [2, 0, 1, 4, 5]
    assert codec.encode(np.array([7, 3])).tolist() == [4, 2]
    assert codec.code(5) == 3 and codec.code("5") == 3 and codec.code(np.int64(7)) == 4
    assert codec.strings == ["a", "12", "3", "5", "7", "05"]
    assert codec.table()[codec.encode(np.array([3, 12]))].tolist() == ["3", "12"]


def test_rollback_forgets_uncommitted_int_ids() -> None:
    codec = Codec()
    codec.encode(np.array([1, 2]))
    codec.mark_committed(len(codec))
    codec.encode(np.array([3, 4]))
    codec.code("x")
    codec.rollback()
    assert codec.strings == ["1", "2"]
    assert codec.encode(np.array([4, 1])).tolist() == [2, 0]
    assert codec.code("x") == 3 and codec.pending() == (2, ["4", "x"])
