"""``has <column>`` / ``not has <column>``: a column is (not) null; ``has:<tag>`` stays a tag filter."""

from __future__ import annotations

import numpy as np
import pytest
from weightslab.query.engine import run_query
from weightslab.query.errors import QuerySyntaxError
from weightslab.query.frame import Frame
from weightslab.query.spec import HasTag, IsNull, Not, NotNull
from weightslab.query.text import format_query, parse_query


def _frame():
    return Frame(sample_id=np.array(["a", "b", "c", "d"], dtype=object), split=np.array(["train"] * 4, dtype=object),
                 discarded=np.zeros(4, bool),
                 columns={"near_duplicate_of": np.array([None, "c", "b", None], dtype=object),
                          "outlier_score": np.array([0.1, np.nan, 3.0, 2.5])},
                 tags={"near_duplicate_of": np.array([True, False, False, False])}, categories={})


def test_has_column_parses_to_not_null_and_round_trips():
    q = parse_query("has near_duplicate_of")
    assert q.filter == NotNull(column="near_duplicate_of")
    assert parse_query("not has near_duplicate_of").filter == IsNull(column="near_duplicate_of")
    assert parse_query("has:near_duplicate_of").filter == HasTag(tag="near_duplicate_of")  # the tag form
    assert parse_query("not (has outlier_score)").filter == Not(filter=NotNull(column="outlier_score"))
    for text in ("has near_duplicate_of and outlier_score > 2 sort by outlier_score desc", "not has `odd name`"):
        q = parse_query(text)
        assert parse_query(format_query(q)) == q


def test_has_column_filters_non_null_values():
    frame = _frame()
    assert run_query(frame, "has near_duplicate_of").indices.tolist() == [1, 2]
    assert run_query(frame, "not has near_duplicate_of").indices.tolist() == [0, 3]
    assert run_query(frame, "has:near_duplicate_of").indices.tolist() == [0]
    assert run_query(frame, "has outlier_score and outlier_score > 2 sort by outlier_score desc").indices.tolist() == [2, 3]


def test_has_needs_a_column_or_a_tag():
    with pytest.raises(QuerySyntaxError):
        parse_query("has")
    with pytest.raises(QuerySyntaxError):
        parse_query("has 3")
