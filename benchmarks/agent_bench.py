"""Query agent overhead per question on a 1M-row sample table, excluding the model's latency.

Per question: describe the table for the prompt (names, types, ranges), build the messages,
parse + validate the model's plan (validation runs it on the frame), and turn the outcome into
the answer (rows / groups / preview of an edit). The model is an in-process stand-in that
returns the plan at once, so only WeightsLab's own work is timed. Ratios are against a plain
``numpy.argsort`` of one column measured in the same run (the machine is shared and noisy).
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROWS = 1_000_000
RUNS = 7
QUESTIONS: dict[str, dict[str, Any]] = {
    "top20_train_label3_by_loss": {"steps": [
        {"step": "filter", "where": {"op": "all", "filters": [{"op": "==", "column": "split", "value": "train"},
                                                              {"op": "==", "column": "label", "value": 3}]}},
        {"step": "sort", "by": [{"column": "loss", "descending": True}]}, {"step": "limit", "n": 20}]},
    "tag_top5pct_suspected_mislabel": {"steps": [
        {"step": "top_percent", "column": "suspected_mislabel", "percent": 5}, {"step": "tag", "tag": "review"}]},
    "discard_tagged_blurry": {"steps": [
        {"step": "filter", "where": {"op": "has_tag", "tag": "noisy"}}, {"step": "discard"}]},
    "mean_loss_per_class": {"steps": [
        {"step": "group", "by": ["label"], "aggregates": [{"fn": "mean", "column": "loss"}]}]},
}


def _frame(rows: int) -> Any:
    """The query benchmark's 1M x 20 table (same generator, same seed)."""
    path = Path(__file__).with_name("query_bench.py")
    spec = importlib.util.spec_from_file_location("query_bench_for_agent", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._frame(rows)


class _Instant:
    """Stand-in for a model (none can run in a benchmark): replies with the scripted plan."""

    name = "bench"
    model = "instant"

    def __init__(self) -> None:
        self.reply = "{}"

    def chat(self, messages: Sequence[Mapping[str, str]], schema: Mapping[str, Any]) -> str:
        return self.reply

    def models(self) -> list[Any]:
        return []

    def probe(self) -> Any:
        return None

    def close(self) -> None:
        pass


class _Experiment:
    def __init__(self, frame: Any) -> None:
        self._frame = frame

    def frame(self) -> Any:
        return self._frame


def _time(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2),
            "max_ms": round(max(times), 2), "runs": runs}


def run(rows: int = ROWS, runs: int = RUNS) -> dict[str, Any]:
    from weightslab_agent.agent import QueryAgent
    from weightslab_agent.prompt import describe_table

    frame = _frame(rows)
    experiment = _Experiment(frame)
    agent = QueryAgent()
    model = _Instant()
    agent._local = model  # the benchmark's stand-in replaces the Ollama client
    baseline = _time(lambda: np.argsort(frame.columns["loss"], kind="stable"), runs)
    out: dict[str, Any] = {"rows": rows, "baseline_argsort": baseline,
                           "describe_table": _time(lambda: describe_table(frame), runs)}
    for name, plan in QUESTIONS.items():
        model.reply = json.dumps(plan)
        timing = _time(partial(agent.query, name, experiment=experiment), runs)
        timing["ratio_to_argsort"] = round(timing["median_ms"] / max(baseline["median_ms"], 1e-9), 2)
        out[name] = timing
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
