"""Conversions between protobuf messages and Python values, and small numeric helpers."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
from weightslab.audit import jsonable

from weightslab_grpc_server._generated import experiment_pb2 as pb
from weightslab_grpc_server.errors import invalid

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_JSON_CHARS = 1_000_000


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str, field: str) -> Any:
    """Strict JSON (no NaN/Infinity) or INVALID_ARGUMENT naming ``field``."""
    if len(text) > MAX_JSON_CHARS:
        raise invalid(f"{field}: {len(text)} characters (at most {MAX_JSON_CHARS})")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise invalid(f"{field}: not valid JSON: {exc}") from None


def to_json(value: Any) -> str:
    """JSON text of any value (non-finite numbers and unknown objects as text)."""
    return json.dumps(jsonable(value), sort_keys=True, allow_nan=False, ensure_ascii=False)


def value_to_python(value: pb.Value, field: str) -> Any:
    """The Python value of a typed :class:`Value`; an unset value is an error naming ``field``."""
    kind = value.WhichOneof("kind")
    if kind is None:
        raise invalid(f"{field}: required: set one of number, int, bool, string, json")
    if kind == "json":
        return parse_json(value.json, f"{field}.json")
    if kind == "string" and len(value.string) > MAX_JSON_CHARS:
        raise invalid(f"{field}.string: {len(value.string)} characters (at most {MAX_JSON_CHARS})")
    return getattr(value, kind)


def python_to_value(value: Any) -> pb.Value:
    """A :class:`Value` for a Python/numpy value (``None``/NaN -> unset = null)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return pb.Value()
    if isinstance(value, bool):
        return pb.Value(bool=value)
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return pb.Value(int=value)
        return pb.Value(string=str(value))
    if isinstance(value, float):
        return pb.Value(number=value) if not math.isnan(value) else pb.Value()
    if isinstance(value, str):
        return pb.Value(string=value)
    return pb.Value(json=to_json(value))


def as_dict(obj: Any) -> dict[str, Any]:
    """A plain dict view of a result object (mapping, dataclass, pydantic model, ``to_dict()``)."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    to_dict = getattr(obj, "to_dict", None) or getattr(obj, "model_dump", None)
    if callable(to_dict):
        out = to_dict()
        if isinstance(out, Mapping):
            return dict(out)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "__dict__"):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    return {"value": obj}


def text_of(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "value") and not isinstance(value, (str, bytes)):  # enums
        value = value.value
    return str(value)


def timestamp_text(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return datetime.fromtimestamp(float(value), UTC).isoformat()
    return str(value)


def int_of(value: Any, default: int = 0) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return out if INT64_MIN <= out <= INT64_MAX else default


def float_of(value: Any, default: float = 0.0) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return out if math.isfinite(out) else default
