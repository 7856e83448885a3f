"""Issue 12 items 2 and 11: control characters refused in names and values whatever the caller;
tag edits matching nothing create no column; a configurable cap on tag columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from weightslab.experiment import Experiment
from weightslab.table import TooManyTags


def _experiment(tmp_path: Path, **env: str) -> Experiment:
    exp = Experiment(kwargs={"root_log_dir": tmp_path / "root"}, environ=env)
    exp.register_samples("train", [str(i) for i in range(10)])
    return exp


@pytest.mark.parametrize("bad", ["bad\x00name", "tab\there", "bell\x07", "del\x7f", "c1\x85"])
def test_tag_names_with_control_characters_are_refused(tmp_path: Path, bad: str) -> None:
    exp = _experiment(tmp_path)
    try:
        with pytest.raises(ValueError, match=r"control character U\+00"):
            exp.edit("tag", ids=["1"], tag=bad)
        with pytest.raises(ValueError, match=r"control character U\+00"):
            exp.edit("set_category", ids=["1"], tag=bad, value="x")
        with pytest.raises(ValueError, match=r"value .*control character U\+00"):
            exp.edit("set_category", ids=["1"], tag="quality", value=bad)
        assert exp.table.tags == {} and exp.table.categories == {}
    finally:
        exp.shutdown()


def test_signal_names_with_control_characters_are_refused(tmp_path: Path) -> None:
    exp = _experiment(tmp_path)
    try:
        with pytest.raises(ValueError, match=r"signal name .*U\+0000"):
            exp.record("loss\x00", np.ones(2), ["1", "2"], split="train")
    finally:
        exp.shutdown()


def test_an_edit_matching_no_rows_creates_no_column(tmp_path: Path) -> None:
    exp = _experiment(tmp_path)
    try:
        for i in range(300):
            result = exp.edit("tag", query="sample_id == 'nope'", tag=f"t{i}")
            assert result == {"matched": 0, "changed": 0, "sample_ids": []}
        assert exp.edit("set_category", query="sample_id == 'nope'", tag="c", value="v")["matched"] == 0
        assert exp.edit("untag", ids=["1"], tag="never")["changed"] == 0
        assert exp.table.tags == {} and exp.table.categories == {}
        assert exp.edit("tag", ids=["1", "2"], tag="real")["changed"] == 2
        assert list(exp.table.tags) == ["real"]
    finally:
        exp.shutdown()


def test_tag_columns_are_capped_with_a_clear_error(tmp_path: Path) -> None:
    exp = _experiment(tmp_path, WL_MAX_TAGS="2")
    try:
        exp.edit("tag", ids=["1"], tag="a")
        exp.edit("set_category", ids=["2"], tag="b", value="x")
        with pytest.raises(TooManyTags, match=r"tag 'c'.*2 tag columns.*WL_MAX_TAGS"):
            exp.edit("tag", ids=["3"], tag="c")
        exp.edit("tag", ids=["3"], tag="a")  # existing columns stay editable
        assert sorted(exp.table.tags) == ["a"] and int(exp.table.tags["a"][: exp.table.n].sum()) == 2
    finally:
        exp.shutdown()


def test_tag_cap_zero_means_no_cap(tmp_path: Path) -> None:
    exp = _experiment(tmp_path, WL_MAX_TAGS="0")
    try:
        for i in range(300):
            exp.edit("tag", ids=["1"], tag=f"t{i}")
        assert len(exp.table.tags) == 300
    finally:
        exp.shutdown()
