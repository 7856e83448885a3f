"""Errors of evaluation passes."""

from __future__ import annotations


class EvaluationBusy(RuntimeError):
    """A pass is already running (one pass at a time)."""


class EvaluationError(RuntimeError):
    """The pass cannot run (e.g. the default evaluator has no watched model)."""
