"""The plan a model must produce: typed steps that map 1:1 onto the core query spec and edits.

A plan is JSON validated by pydantic (never evaluated as code)::

    {"steps": [{"step": "filter", "where": {"op": "all", "filters": [
                   {"op": "==", "column": "split", "value": "train"},
                   {"op": "==", "column": "label", "value": 3}]}},
               {"step": "sort", "by": [{"column": "loss", "descending": true}]},
               {"step": "limit", "n": 20}],
     "explanation": "training samples labelled 3, highest loss first"}

Steps run in a fixed order whatever order they are listed in: filter → top_k|top_percent →
sort → limit → group | one action (tag, untag, discard, restore). ``clarify`` and
``out_of_scope`` stand alone. Actions only touch tags and the discarded flag: no step can write
a label, a prediction or a recorded signal.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, StringConstraints, model_validator
from weightslab.query import Aggregate, Filter, Group, SortKey
from weightslab.query.spec import MAX_LIMIT, MAX_SORT_KEYS, MAX_TOP_K, ColumnName

# Tag names a plan may write: identifier-like, so a tag can never pose as a column or a category.
TagName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")]
ShortText = Annotated[str, StringConstraints(max_length=1000)]
MAX_STEPS = 12


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilterStep(_Step):
    """Keep rows matching ``where`` (a core filter: comparisons, in, between, tags, all/any/not)."""

    step: Literal["filter"] = "filter"
    where: Filter


class SortStep(_Step):
    step: Literal["sort"] = "sort"
    by: tuple[SortKey, ...] = Field(min_length=1, max_length=MAX_SORT_KEYS)


class TopKStep(_Step):
    """The ``k`` rows with the largest (``largest=false``: smallest) non-missing ``column``."""

    step: Literal["top_k"] = "top_k"
    column: ColumnName
    k: int = Field(ge=1, le=MAX_TOP_K)
    largest: bool = True


class TopPercentStep(_Step):
    """The top ``percent`` % of the rows so far by ``column`` (rows with a value; at least one)."""

    step: Literal["top_percent"] = "top_percent"
    column: ColumnName
    percent: FiniteFloat = Field(gt=0, le=100)
    largest: bool = True


class LimitStep(_Step):
    step: Literal["limit"] = "limit"
    n: int = Field(ge=1, le=MAX_LIMIT)


class GroupStep(_Step):
    """Group the rows by columns (``label``, ``split``, ``tag:<name>``) and aggregate."""

    step: Literal["group"] = "group"
    by: tuple[ColumnName, ...] = Field(default=(), max_length=8)
    aggregates: tuple[Aggregate, ...] = Field(default=(Aggregate(fn="count"),), min_length=1, max_length=32)


class TagStep(_Step):
    """Add boolean tag ``tag`` (or, with ``value``, set categorical tag ``tag`` = ``value``)."""

    step: Literal["tag"] = "tag"
    tag: TagName
    value: TagName | None = None


class UntagStep(_Step):
    """Remove boolean tag ``tag`` (or clear categorical tag ``tag``)."""

    step: Literal["untag"] = "untag"
    tag: TagName


class DiscardStep(_Step):
    """Exclude the rows from training from the next batch on."""

    step: Literal["discard"] = "discard"


class RestoreStep(_Step):
    """Bring discarded rows back."""

    step: Literal["restore"] = "restore"


class ClarifyStep(_Step):
    """The question is ambiguous: ask the person ``question``."""

    step: Literal["clarify"] = "clarify"
    question: ShortText


class OutOfScopeStep(_Step):
    """The question is not about the sample table (or asks for something no step can do)."""

    step: Literal["out_of_scope"] = "out_of_scope"
    reason: ShortText


Step = Annotated[
    FilterStep | SortStep | TopKStep | TopPercentStep | LimitStep | GroupStep | TagStep | UntagStep
    | DiscardStep | RestoreStep | ClarifyStep | OutOfScopeStep,
    Field(discriminator="step"),
]
ACTIONS = (TagStep, UntagStep, DiscardStep, RestoreStep)
STANDALONE = (ClarifyStep, OutOfScopeStep)
Kind = Literal["select", "aggregate", "edit", "clarify", "out_of_scope", "empty"]


class Plan(BaseModel):
    """What the model answers: ``steps`` (see the module doc) and a one-line ``explanation``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: tuple[Step, ...] = Field(default=(), max_length=MAX_STEPS)
    explanation: ShortText = ""

    @model_validator(mode="after")
    def _shape(self) -> Plan:
        kinds = [s.step for s in self.steps]
        dup = sorted({k for k in kinds if kinds.count(k) > 1})
        if dup:
            raise ValueError(f"steps: {', '.join(dup)} given more than once (combine filters with all/any)")
        standalone = [s.step for s in self.steps if isinstance(s, STANDALONE)]
        if standalone and len(self.steps) > 1:
            raise ValueError(f"steps: {standalone[0]} must be the only step")
        actions = [s.step for s in self.steps if isinstance(s, ACTIONS)]
        if len(actions) > 1:
            raise ValueError(f"steps: one action per plan, got {', '.join(actions)}")
        if actions and self.find(GroupStep) is not None:
            raise ValueError(f"steps: group cannot be combined with {actions[0]}")
        if self.find(TopKStep) is not None and self.find(TopPercentStep) is not None:
            raise ValueError("steps: give top_k or top_percent, not both")
        return self

    def find(self, cls: type[Any]) -> Any:
        return next((s for s in self.steps if isinstance(s, cls)), None)

    @property
    def action(self) -> TagStep | UntagStep | DiscardStep | RestoreStep | None:
        return next((s for s in self.steps if isinstance(s, ACTIONS)), None)

    @property
    def kind(self) -> Kind:
        if not self.steps:
            return "empty"
        if self.find(ClarifyStep) is not None:
            return "clarify"
        if self.find(OutOfScopeStep) is not None:
            return "out_of_scope"
        if self.action is not None:
            return "edit"
        if self.find(GroupStep) is not None:
            return "aggregate"
        return "select"

    def group(self) -> Group | None:
        step = self.find(GroupStep)
        return None if step is None else Group(by=step.by, aggregates=step.aggregates)

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=False)


def _without_titles(node: Any) -> Any:
    """pydantic's generated ``title`` keys: noise for a model, a third of the prompt's schema."""
    if isinstance(node, dict):
        return {k: _without_titles(v) for k, v in node.items()
                if not (k == "title" and isinstance(v, str))}
    if isinstance(node, list):
        return [_without_titles(v) for v in node]
    return node


_SCHEMA: dict[str, Any] | None = None


def plan_json_schema() -> dict[str, Any]:
    """The JSON schema sent to the model (response format, and in the prompt)."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = _without_titles(Plan.model_json_schema())
    return json.loads(json.dumps(_SCHEMA))  # a copy: callers may not change the cached one
