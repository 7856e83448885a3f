"""Issue 12 items 3 and 7: secret-named hyperparameters never shown in clear (log, errors, audit,
YAML file mode); values typed as text parsed without YAML aliases, bounded, numbers in any notation."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest
from weightslab.audit import AuditLog
from weightslab.hyperparams import HyperParameterError, HyperParameters

KEY = "sk-or-v1-0123456789abcdef"
HF = "hf_abcdefghijklmnop"


def _hp(tmp_path: Path) -> HyperParameters:
    return HyperParameters({"lr": 0.1, "layers": [1, 2], "epochs": 3, "llm": {"openrouter_api_key": KEY},
                            "hf_access_key": HF, "max_tokens": 256}, yaml_path=tmp_path / "hyperparameters.yaml")


def test_applied_secret_values_are_logged_as_fingerprints(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    hp = _hp(tmp_path)
    hp.request("llm.openrouter_api_key", "sk-or-v1-new-value-0000")
    hp.request("max_tokens", "512")
    with caplog.at_level(logging.INFO, logger="weightslab.hyperparameters"):
        hp.apply_pending()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "applied hyperparameters" in text and "sk-or-v1-new-value-0000" not in text
    assert "fingerprint " in text and "512" in text  # ordinary values stay readable


def test_errors_never_quote_a_secret_value(tmp_path: Path) -> None:
    hp = HyperParameters({"db_password": 123456789, "lr": 0.1})
    with pytest.raises(HyperParameterError) as err:
        hp.request("db_password", "hunter2-is-my-password")
    assert "123456789" not in str(err.value) and "hunter2-is-my-password" not in str(err.value)
    assert "fingerprint" in str(err.value) and "db_password" in str(err.value)
    with pytest.raises(HyperParameterError, match=r"lr='x': expected a number \(current 0.1\)"):
        hp.request("lr", "x")  # other keys keep their values in messages


def test_audit_error_text_is_scrubbed_for_secret_keys(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path, "json")
    with audit.interaction("set_hyperparameter", params={"key": "hf_access_key", "value": "hf_new_value_123"},
                           caller={"transport": "test"}) as entry:
        entry.before = HF
        entry.outcome, entry.error = "error", f"hf_access_key={HF!r} -> 'hf_new_value_123' refused"
    text = (tmp_path / "audit.jsonl").read_text()
    assert HF not in text and "hf_new_value_123" not in text
    record = json.loads(text.splitlines()[-1])
    assert record["error"].count("fingerprint ") == 2 and record["before"].startswith("fingerprint ")


def test_the_yaml_file_is_private(tmp_path: Path) -> None:
    hp = _hp(tmp_path)
    path = tmp_path / "hyperparameters.yaml"
    path.write_text("lr: 0.1\n")
    path.chmod(0o644)  # a file from an older version
    hp.request("lr", 0.2)
    hp._mtime = path.stat().st_mtime_ns  # as if we wrote it last
    hp.apply_pending()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and "lr: 0.2" in path.read_text()


def test_a_leftover_temporary_file_never_leaks_into_the_yaml(tmp_path: Path) -> None:
    """A ``.tmp`` left by a crash mid-write, longer than what is written next, is overwritten, not
    written over in place: the file holds exactly the current values (no trailing old bytes)."""
    hp = _hp(tmp_path)
    path = tmp_path / "hyperparameters.yaml"
    (tmp_path / "hyperparameters.yaml.tmp").write_text("stale: [" + "x, " * 5000 + "]\n")
    hp.request("lr", 0.2)
    hp._mtime = path.stat().st_mtime_ns if path.exists() else None
    hp.apply_pending()
    from weightslab.hyperparams import load_yaml

    assert load_yaml(path.read_text()) == hp.as_dict() and "stale" not in path.read_text()


@pytest.mark.parametrize(("text", "expected"), [
    ("1e-3", 0.001), ("1E3", 1000.0), (".5", 0.5), ("5.", 5.0), ("-1.5e+2", -150.0), ("1_000", 1000), ("2", 2.0),
])
def test_numbers_in_every_common_notation(text: str, expected: float) -> None:
    hp = HyperParameters({"scale": 0.1})  # no range rule (lr must be > 0: see test_first_hour_core)
    assert hp.request("scale", text) == expected


def test_lists_and_none_parse_as_json_or_plain_yaml() -> None:
    hp = HyperParameters({"layers": [1], "opt": None})
    assert hp.request("layers", "[64, 32]") == [64, 32]
    assert hp.request("layers", "[a, b]") == ["a", "b"]
    assert hp.request("opt", '{"name": "sgd"}') == {"name": "sgd"}
    assert hp.request("opt", "null") is None


def test_a_yaml_alias_bomb_is_refused() -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        levels.append(f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [" + ", ".join([f"*{prev}"] * 10) + "]")
    bomb = "{" + ", ".join(levels) + "}"
    assert len(bomb) < 700
    hp = HyperParameters({"layers": [1], "opt": None})
    for key in ("layers", "opt"):
        with pytest.raises(HyperParameterError, match="anchors and aliases"):
            hp.request(key, bomb)
    assert hp.pending() == {}


def test_size_and_depth_are_bounded() -> None:
    hp = HyperParameters({"layers": [1]})
    with pytest.raises(HyperParameterError, match="at most 65536"):
        hp.request("layers", "[" + "1," * 40000 + "1]")
    with pytest.raises(HyperParameterError, match="deeper than 16"):
        hp.request("layers", "[" * 40 + "]" * 40)
    with pytest.raises(HyperParameterError, match="deeper than 16"):
        hp.request("layers", "- " * 30 + "1")  # block YAML, not JSON
    with pytest.raises(HyperParameterError, match="more than 10000 items"):
        hp.request("layers", [1] * 10001)  # a structured value from an API is bounded too


def test_file_edit_errors_name_the_file_not_its_path_and_never_quote_secrets(tmp_path: Path) -> None:
    hp = HyperParameters({"db_password": "old-secret-value", "lr": 0.1}, yaml_path=tmp_path / "hyperparameters.yaml")
    path = tmp_path / "hyperparameters.yaml"
    path.write_text("db_password: [new-secret-value]\nlr: 0.1\n")
    assert hp.check_file() == {}
    assert hp.last_error is not None and hp.last_error.startswith("hyperparameters.yaml: db_password=")
    assert str(tmp_path) not in hp.last_error
    assert "old-secret-value" not in hp.last_error and "new-secret-value" not in hp.last_error
    path.write_text("db_password: 'unterminated-secret-value\nlr: [\n")
    assert hp.check_file() == {}
    assert "not valid YAML" in hp.last_error and "unterminated-secret-value" not in hp.last_error
