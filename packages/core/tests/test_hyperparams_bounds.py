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


# Every built-in range rule, at and just past its bounds (a rule turned upside down or off by one
# went unnoticed by the mutation smoke test: only batch_size, lr, epochs and momentum were tried).
_RANGES = {
    "batch_size": ([1, 512], [0, -1]),
    "lr": ([1e-6, 3.0], [0.0, -0.1, float("inf"), 10**400]),  # 10**400: an int beyond float range
    "learning_rate": ([1e-6, 3.0], [0.0, -0.1, float("inf"), 10**400]),
    "epochs": ([0, 10], [-1]),
    "num_epochs": ([0, 10], [-1]),
    "max_epochs": ([0, 10], [-1]),
    "max_steps": ([0, 1000], [-1]),
    "num_workers": ([0, 4], [-1]),
    "momentum": ([0.0, 0.9, 1.0], [-0.1, 1.5]),
    "weight_decay": ([0.0, 1e-4], [-1e-4, float("inf"), 10**400]),
    "dropout": ([0.0, 0.5], [1.0, -0.1]),
}


@pytest.mark.parametrize("key", sorted(_RANGES))
def test_each_range_rule_accepts_its_range_and_refuses_past_it(key: str) -> None:
    from weightslab.hyperparams import HyperParameters

    good, bad = _RANGES[key]
    start = good[-1]
    hp = HyperParameters({key: start, "nested": {key: start}})
    for path in (key, f"nested.{key}"):  # the rule goes by the key's last part
        for value in good:
            assert hp.request(path, value) == value
        for value in bad:
            with pytest.raises(HyperParameterError, match=rf"{path}=.*: expected "):
                hp.request(path, value)
    assert hp.pending() == {key: good[-1], f"nested.{key}": good[-1]}  # the refused values never queued


def test_a_mapping_key_counts_toward_the_nesting_bound() -> None:
    """A structured value from the Python API may use tuples as mapping keys: their nesting counts."""
    from weightslab.hyperparams import HyperParameters, check_shape

    def key(levels: int) -> object:
        value: object = "k"
        for _ in range(levels):
            value = (value,)
        return value

    # the mapping is level 1, so its key may hold MAX_VALUE_DEPTH - 1 levels of tuples
    check_shape("table", {key(MAX_VALUE_DEPTH - 1): 1})
    with pytest.raises(HyperParameterError, match=f"table: value nested deeper than {MAX_VALUE_DEPTH} levels"):
        check_shape("table", {key(MAX_VALUE_DEPTH): 1})
    hp = HyperParameters({"table": None})  # no current type: any value, if bounded
    with pytest.raises(HyperParameterError, match="nested deeper"):
        hp.request("table", {key(MAX_VALUE_DEPTH): 1})
    assert hp.pending() == {}


def test_an_unchanged_file_is_not_read_again_over_a_later_edit(tmp_path) -> None:
    """The poller reads the YAML file once per change: an edit requested after that read (the API,
    the studio) is not overwritten by the file's older value at the next poll."""
    from weightslab.hyperparams import HyperParameters

    path = tmp_path / "hyperparameters.yaml"
    hp = HyperParameters({"lr": 0.1, "batch_size": 8}, yaml_path=path)
    path.write_text("lr: 0.5\nbatch_size: 8\n")
    assert hp.check_file() == {"lr": 0.5}
    hp.request("lr", 0.3)  # a later edit through the API
    assert hp.check_file() == {}  # the file did not change since it was read
    assert hp.pending() == {"lr": 0.3}
    assert hp.apply_pending() == {"lr": 0.3} and hp["lr"] == 0.3


@pytest.mark.parametrize("current", [1, 0.1])  # an int current keeps an int; a float one converts it
def test_a_number_beyond_float_range_is_refused_not_an_overflow(current) -> None:
    """``10**400`` is no valid learning rate: refused with a HyperParameterError (it raised
    OverflowError from float() for a float-valued key, and passed the int-valued key's rule
    only because of the guard against it)."""
    from weightslab.hyperparams import HyperParameters

    hp = HyperParameters({"lr": current, "weight_decay": current})
    for key in ("lr", "weight_decay"):
        with pytest.raises(HyperParameterError, match=rf"{key}=1000.*: expected "):
            hp.request(key, 10**400)
        with pytest.raises(HyperParameterError, match=rf"{key}=.*: expected "):
            hp.request(key, "1" + "0" * 400)  # the same typed as text
    assert hp.pending() == {}


def test_text_length_bound_is_inclusive_in_values_and_nested_text() -> None:
    """``MAX_VALUE_CHARS`` characters are accepted, one more is refused: typed text and text inside
    a structured value alike (the nested check had a surviving mutant: ``>`` read as ``==``)."""
    from weightslab.hyperparams import MAX_VALUE_CHARS, HyperParameterError, check_shape, parse_value

    at_bound, over = "a" * MAX_VALUE_CHARS, "a" * (MAX_VALUE_CHARS + 1)
    assert parse_value("note", at_bound) == at_bound
    with pytest.raises(HyperParameterError, match=f"at most {MAX_VALUE_CHARS}"):
        parse_value("note", over)
    check_shape("notes", {"a": [at_bound]})
    for value in ({"a": [over]}, [over + "b"], over):
        with pytest.raises(HyperParameterError, match=f"characters; at most {MAX_VALUE_CHARS} accepted"):
            check_shape("notes", value)
