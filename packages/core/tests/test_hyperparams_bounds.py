"""Typed hyperparameter values: exact nesting bound and where a YAML error is (survivors of the
mutation smoke test: an off-by-one in either went unnoticed)."""

from __future__ import annotations

import pytest
from weightslab.hyperparams import MAX_VALUE_DEPTH, HyperParameterError, parse_value


def _nested(levels: int, leaf: str) -> str:
    return "[" * levels + leaf + "]" * levels


@pytest.mark.parametrize("leaf", ["1", "a"])  # JSON, then plain YAML (a bare word is not JSON)
def test_nesting_up_to_the_bound_is_accepted_and_one_more_is_refused(leaf: str) -> None:
    value = parse_value("schedule", _nested(MAX_VALUE_DEPTH, leaf))
    for _ in range(MAX_VALUE_DEPTH):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == (1 if leaf == "1" else "a")
    with pytest.raises(HyperParameterError, match=f"schedule: value nested deeper than {MAX_VALUE_DEPTH} levels"):
        parse_value("schedule", _nested(MAX_VALUE_DEPTH + 1, leaf))


@pytest.mark.parametrize(("text", "where"), [
    ("[a, b", "line 1, column 6"),
    ("{a: [1, 2}", "line 1, column 10"),
    ("a: 1\nb: [x, y\nc: 2", "line 3, column 2"),
])
def test_a_yaml_error_says_where_it_is_one_based(text: str, where: str) -> None:
    with pytest.raises(HyperParameterError) as err:
        parse_value("augment", text)
    message = str(err.value)
    assert message.startswith("augment: not a valid value (") and f"at {where})" in message
    assert "expected a number, JSON or plain YAML" in message
