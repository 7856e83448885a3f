"""Run a validated :class:`~weightslab_agent.plan.Plan` on a query frame (read-only).

The plan becomes core query specs (``weightslab.query``): filter, top-k, sort and group run in
the engine; an action is only *resolved* here (which rows, how many would change). Applying it
is :func:`weightslab_agent.apply.apply_edit`'s job, so a preview and an apply see the same rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from weightslab.query import (
    Frame,
    GroupRow,
    Page,
    Query,
    QueryError,
    TopK,
    format_filter,
    ordered_indices,
    run_query,
    select,
)
from weightslab.query.spec import MAX_LIMIT

from weightslab_agent.plan import (
    ClarifyStep,
    DiscardStep,
    FilterStep,
    GroupStep,
    Kind,
    LimitStep,
    OutOfScopeStep,
    Plan,
    RestoreStep,
    SortStep,
    TagStep,
    TopKStep,
    TopPercentStep,
    UntagStep,
)

MAX_ROWS_SHOWN = 100
DEFAULT_ROWS_SHOWN = 20
MAX_GROUPS_SHOWN = 1000
ROW_COLUMNS = ("label", "prediction", "loss")


@dataclass(frozen=True)
class EditTarget:
    """What an action would do: ``action`` in ``Experiment.edit``'s terms, and the rows."""

    action: str  # tag | untag | set_category | clear_category | discard | restore
    tag: str | None
    value: str | None
    rows: np.ndarray
    would_change: int


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    total: int
    rows: np.ndarray  # shown rows (select) or target rows (edit), in plan order
    groups: list[GroupRow] | None = None
    total_groups: int | None = None
    edit: EditTarget | None = None
    columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def _top(frame: Frame, plan: Plan) -> TopK | None:
    """``top_k`` as is; ``top_percent`` as the k of that share of the filtered rows with a value."""
    step = plan.find(TopKStep)
    if step is not None:
        return TopK(column=step.column, k=step.k, largest=step.largest)
    pct = plan.find(TopPercentStep)
    if pct is None:
        return None
    where = plan.find(FilterStep)
    idx = select(frame, where.where if where is not None else None)
    col = frame.column(pct.column, field="top_percent.column")
    values = col[idx]
    if values.dtype.kind == "f":
        present = int(np.isfinite(values).sum())
    elif values.dtype.kind == "O":
        present = int(sum(v is not None for v in values))
    else:
        present = len(values)
    k = max(1, math.ceil(present * pct.percent / 100.0)) if present else 0
    return TopK(column=pct.column, k=k, largest=pct.largest) if k else None


def _query(frame: Frame, plan: Plan, *, limit: int, group: bool) -> tuple[Query, bool]:
    """The core query of the plan; ``empty`` is True when top_percent leaves no row to rank."""
    where = plan.find(FilterStep)
    sort = plan.find(SortStep)
    top = _top(frame, plan)
    empty = plan.find(TopPercentStep) is not None and top is None
    q = Query(filter=where.where if where is not None else None, top_k=top,
              sort=sort.by if sort is not None else (), page=Page(limit=limit),
              group=plan.group() if group else None)
    return q, empty


def referenced_columns(plan: Plan) -> tuple[str, ...]:
    names: list[str] = []

    def walk(node: Any) -> None:
        column = getattr(node, "column", None)
        if isinstance(column, str):
            names.append(column)
        for child in getattr(node, "filters", ()) or ():
            walk(child)
        inner = getattr(node, "filter", None)
        if inner is not None:
            walk(inner)

    for step in plan.steps:
        if isinstance(step, FilterStep):
            walk(step.where)
        elif isinstance(step, SortStep):
            names.extend(k.column for k in step.by)
        elif isinstance(step, (TopKStep, TopPercentStep)):
            names.append(step.column)
    return tuple(dict.fromkeys(names))


def _edit_target(frame: Frame, plan: Plan, rows: np.ndarray) -> EditTarget:
    step = plan.action
    if isinstance(step, TagStep):
        if step.value is None:
            col = frame.tags.get(step.tag)
            change = len(rows) if col is None else int((~col[rows]).sum())
            return EditTarget("tag", step.tag, None, rows, change)
        cats = frame.categories.get(step.tag)
        change = len(rows) if cats is None else int(sum(v != step.value for v in cats[rows]))
        return EditTarget("set_category", step.tag, step.value, rows, change)
    if isinstance(step, UntagStep):
        if step.tag in frame.categories and step.tag not in frame.tags:
            cats = frame.categories[step.tag]
            return EditTarget("clear_category", step.tag, None, rows, int(sum(v is not None for v in cats[rows])))
        col = frame.tags.get(step.tag)
        return EditTarget("untag", step.tag, None, rows, 0 if col is None else int(col[rows].sum()))
    if isinstance(step, DiscardStep):
        return EditTarget("discard", None, None, rows, int((~frame.discarded[rows]).sum()))
    assert isinstance(step, RestoreStep)
    return EditTarget("restore", None, None, rows, int(frame.discarded[rows].sum()))


def run_plan(frame: Frame, plan: Plan) -> Outcome:
    """Evaluate ``plan`` on ``frame``; :class:`QueryError` (naming the column/field) if it cannot run."""
    kind = plan.kind
    if kind in ("empty", "clarify", "out_of_scope"):
        return Outcome(kind, 0, np.zeros(0, dtype=np.int64))
    limit_step = plan.find(LimitStep)
    limit = limit_step.n if limit_step is not None else None
    columns = referenced_columns(plan)
    if kind == "aggregate":
        q, empty = _query(frame, plan, limit=min(limit or MAX_GROUPS_SHOWN, MAX_GROUPS_SHOWN), group=True)
        if empty:
            return Outcome(kind, 0, np.zeros(0, dtype=np.int64), groups=[], total_groups=0, columns=columns)
        result = run_query(frame, q)
        return Outcome(kind, result.total, np.zeros(0, dtype=np.int64), groups=list(result.groups or []),
                       total_groups=result.total_groups, columns=columns)
    if kind == "edit":
        q, empty = _query(frame, plan, limit=1, group=False)
        rows = np.zeros(0, dtype=np.int64) if empty else ordered_indices(frame, q)
        if limit is not None:
            rows = rows[:limit]
        rows = np.asarray(rows, dtype=np.int64)
        return Outcome(kind, len(rows), rows, edit=_edit_target(frame, plan, rows), columns=columns)
    shown = min(limit or DEFAULT_ROWS_SHOWN, MAX_ROWS_SHOWN)
    q, empty = _query(frame, plan, limit=min(shown, MAX_LIMIT), group=False)
    if empty:
        return Outcome(kind, 0, np.zeros(0, dtype=np.int64), columns=columns)
    result = run_query(frame, q)
    total = result.total if limit is None else min(result.total, limit)
    return Outcome(kind, total, np.asarray(result.indices, dtype=np.int64), columns=columns)


def validate(frame: Frame, plan: Plan) -> Outcome:
    """Validation is evaluation: the engine names unknown columns (listing the real ones) and
    type errors. Group keys and aggregate columns are checked here the same way."""
    step = plan.find(GroupStep)
    if step is not None:
        for name in step.by:
            frame.column(name, field="group.by")
        for agg in step.aggregates:
            if agg.column is not None:
                frame.column(agg.column, field="group.aggregates.column")
    return run_plan(frame, plan)


# -- readable forms --------------------------------------------------------------------


def _quote(name: str) -> str:
    return repr(name)


def plan_text(plan: Plan) -> str:
    """One line per plan, e.g. ``filter split == "train" → sort by loss desc → limit 20``."""
    order = (FilterStep, TopKStep, TopPercentStep, SortStep, LimitStep, GroupStep, TagStep, UntagStep,
             DiscardStep, RestoreStep, ClarifyStep, OutOfScopeStep)
    parts: list[str] = []
    for cls in order:
        step = plan.find(cls)
        if step is None:
            continue
        if isinstance(step, FilterStep):
            parts.append(f"filter {format_filter(step.where)}")
        elif isinstance(step, TopKStep):
            parts.append(f"{'top' if step.largest else 'bottom'} {step.k} by {step.column}")
        elif isinstance(step, TopPercentStep):
            parts.append(f"{'top' if step.largest else 'bottom'} {step.percent:g}% by {step.column}")
        elif isinstance(step, SortStep):
            parts.append("sort by " + ", ".join(k.column + (" desc" if k.descending else "") for k in step.by))
        elif isinstance(step, LimitStep):
            parts.append(f"limit {step.n}")
        elif isinstance(step, GroupStep):
            aggs = ", ".join(a.name for a in step.aggregates)
            parts.append(f"group by {', '.join(step.by)}: {aggs}" if step.by else f"aggregate {aggs}")
        elif isinstance(step, TagStep):
            parts.append(f"tag {_quote(step.tag)}" + (f" = {_quote(step.value)}" if step.value else ""))
        elif isinstance(step, UntagStep):
            parts.append(f"untag {_quote(step.tag)}")
        elif isinstance(step, DiscardStep):
            parts.append("discard")
        elif isinstance(step, RestoreStep):
            parts.append("restore")
        elif isinstance(step, ClarifyStep):
            parts.append(f"clarify: {step.question}")
        elif isinstance(step, OutOfScopeStep):
            parts.append(f"out of scope: {step.reason}")
    return " → ".join(parts) if parts else "(no steps)"


def row_dicts(frame: Frame, rows: np.ndarray, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """The shown rows: id, split, discarded, the label/prediction/loss and the plan's columns, tags."""
    wanted = [c for c in dict.fromkeys((*ROW_COLUMNS, *columns))
              if c in frame.columns]
    out = []
    rows = np.asarray(rows, dtype=np.int64)
    shown = {name: frame.values_at(name, rows) for name in wanted}  # a deferred column: these rows only
    for j, i in enumerate(rows.tolist()):
        row: dict[str, Any] = {"sample_id": str(frame.ids_at(i)), "split": str(frame.splits_at(i)),
                               "discarded": bool(frame.discarded[i])}
        for name in wanted:
            value = shown[name][j]
            value = value.item() if hasattr(value, "item") else value
            row[name] = None if isinstance(value, float) and not math.isfinite(value) else value
        tags = [t for t, col in frame.tags.items() if col[i]]
        tags += [f"{t}={col[i]}" for t, col in frame.categories.items() if col[i] is not None]
        row["tags"] = sorted(tags)
        out.append(row)
    return out


__all__ = ["EditTarget", "Outcome", "QueryError", "plan_text", "referenced_columns", "row_dicts", "run_plan",
           "validate"]
