"""The messages sent to the model: the plan schema, the table's shape, recent turns, the question.

The table is described by its schema only — column names, types and numeric ranges, split
names, tag names — never by string values from the data (those are a prompt-injection
surface). Names are passed as JSON strings and bounded in number and length.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from weightslab.query import Frame

from weightslab_agent.plan import plan_json_schema

MAX_NAMES = 200
MAX_NAME_LEN = 64
SAMPLE = 4096  # values looked at to call a numeric column integer

SYSTEM = """You turn questions about a machine-learning training run into a JSON query plan over its \
sample table (one row per sample). Reply with ONE JSON object that matches this JSON schema, nothing else:
{schema}

How the steps work (they always run in this order): filter -> top_k or top_percent -> sort -> limit -> \
group or one action (tag / untag / discard / restore).
- filter.where uses "op": "==", "!=", "<", "<=", ">", ">=" (with "column" and "value"), "between" \
("low", "high"), "in" ("values"), "is_null", "not_null", "has_tag" / "not_has_tag" ("tag"), "category" \
("tag", "value"), and "all" / "any" (a "filters" list) and "not" (a "filter") to combine conditions.
- "samples tagged X" means {{"op": "has_tag", "tag": "X"}}.
- Use only the columns listed below; "tag:<name>" names a tag as a column in group.by.
- "what is the mean loss per class" is a group step by "label" with aggregate {{"fn": "mean", "column": "loss"}}.
- Actions never change labels or signals. Use "clarify" when the question is ambiguous and \
"out_of_scope" when it is not about this table.
- Put a short human-readable summary in "explanation".
Examples:
"show the 20 training samples with the highest loss labelled 3" -> {{"steps": [{{"step": "filter", "where": \
{{"op": "all", "filters": [{{"op": "==", "column": "split", "value": "train"}}, {{"op": "==", "column": "label", \
"value": 3}}]}}}}, {{"step": "sort", "by": [{{"column": "loss", "descending": true}}]}}, {{"step": "limit", "n": 20}}], \
"explanation": "training samples labelled 3 by loss, highest first"}}
"tag the top 5% by suspected_mislabel as review" -> {{"steps": [{{"step": "top_percent", "column": \
"suspected_mislabel", "percent": 5}}, {{"step": "tag", "tag": "review"}}], "explanation": "tag the 5% most \
suspected mislabels as review"}}

The table:
{table}"""


def _name(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_NAME_LEN else text[:MAX_NAME_LEN] + "..."


def _number(value: float) -> float | int | None:
    if not math.isfinite(value):
        return None
    return int(value) if float(value).is_integer() else round(float(value), 6)


def describe_table(frame: Frame) -> dict[str, Any]:
    """Names, types and ranges (no string values) of the frame the plan will run on."""
    columns: list[dict[str, Any]] = []
    for name in frame.column_names():
        if name.startswith("tag:") or len(columns) >= MAX_NAMES:
            continue
        if name == "sample_id":
            columns.append({"name": name, "type": "string"})
            continue
        arr = frame.column(name)
        kind = frame.kind(name)
        entry: dict[str, Any] = {"name": _name(name), "type": kind}
        if kind == "numeric" and len(arr):
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column has no range
                low, high = float(np.nanmin(arr)), float(np.nanmax(arr))
            if math.isfinite(low) and math.isfinite(high):
                entry["min"], entry["max"] = _number(low), _number(high)
                # a hint for the model only: judged on a strided sample, not the whole column
                sample = arr[:: max(1, len(arr) // SAMPLE)]
                sample = sample[np.isfinite(sample)] if arr.dtype.kind == "f" else sample
                if arr.dtype.kind in "iu" or bool(np.all(sample == np.round(sample))):
                    entry["integer"] = True
        columns.append(entry)
    splits: dict[str, int] = {}
    if len(frame):
        names, codes = frame.split_codes()  # cached on the frame; the plan's split filter reuses it
        counts = np.bincount(codes[codes >= 0], minlength=len(names))
        splits = {_name(n): int(c) for n, c in zip(names[:MAX_NAMES], counts[:MAX_NAMES], strict=True)}
    return {"rows": len(frame), "splits": splits, "columns": columns,
            "boolean_tags": [_name(t) for t in sorted(frame.tags)[:MAX_NAMES]],
            "categorical_tags": [_name(t) for t in sorted(frame.categories)[:MAX_NAMES]]}


def build_messages(question: str, table: Mapping[str, Any], turns: Sequence[tuple[str, str]] = ()
                   ) -> list[dict[str, str]]:
    """System prompt (schema + table), the last turns (question, plan JSON), then the question."""
    schema = json.dumps(plan_json_schema(), separators=(",", ":"))
    system = SYSTEM.format(schema=schema, table=json.dumps(table, separators=(",", ":"), ensure_ascii=False))
    messages = [{"role": "system", "content": system}]
    for asked, plan_json in turns:
        messages.append({"role": "user", "content": asked})
        messages.append({"role": "assistant", "content": plan_json})
    messages.append({"role": "user", "content": question})
    return messages


def retry_message(error: str) -> dict[str, str]:
    return {"role": "user", "content": f"That plan is invalid: {error}\nReply with a corrected plan: one JSON "
                                       "object matching the schema, nothing else."}
