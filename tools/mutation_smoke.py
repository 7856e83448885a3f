"""Mutation smoke test of the core's critical modules with cosmic-ray, on a copy of the core.

For each module a fixed-seed sample of cosmic-ray's mutants (``--per-module``, default 12) is run
against the tests that cover it; a surviving mutant is a change to the code that no test noticed.
The working tree is never touched: the core and the root conftest.py are copied to a temporary
folder, the mutants are applied there and the tests import that copy (PYTHONPATH first).
Prints the survival rate and each survivor's diff; fails when the rate exceeds ``--max-survival``.

    python tools/mutation_smoke.py [--per-module 12] [--seed 1] [--max-survival 1.0] [module ...]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORE_TESTS = "packages/core/tests"
# module (under packages/core/src) -> the tests that must notice a change to it
MODULES: dict[str, tuple[str, ...]] = {
    "weightslab/recorder.py": ("test_recorder_store_errors.py", "test_recorder_values.py", "test_core_review.py"),
    "weightslab/checkpoints.py": ("test_checkpoints.py", "test_checkpoint_guards.py", "test_checkpoint_hardening.py"),
    "weightslab/evaluation/controller.py": ("test_evaluation.py",),
    "weightslab/data.py": ("test_sdk_training.py", "test_sdk_established.py", "test_numpy_only.py",
                           "test_scale_paths.py", "test_loader_set_epoch.py"),
    "weightslab/hyperparams.py": ("test_hyperparams_hardening.py", "test_hyperparams_bounds.py", "test_sdk_training.py"),
}


def _copy_tree(work: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "packages" / "core", work / "packages" / "core", ignore=ignore)
    shutil.copytree(REPO / "examples", work / "examples", ignore=ignore)  # scripts some tests run
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy(REPO / name, work / name)


def _is_annotation(line: str, operator: str) -> bool:
    """``X | None`` in a type annotation: with postponed annotations its mutants change nothing."""
    return "BitOr" in operator and ("None" in line or line.lstrip().startswith("def "))


def _sample(session: Path, source: Path, n: int, seed: int) -> int:
    """Keep a fixed-seed sample of ``n`` work items (annotation mutants left out); returns how many
    candidates there were. The candidates are ordered by what they change (position, operator,
    occurrence), not by cosmic-ray's random job ids: the same seed on the same source picks the
    same mutants, so two runs compare."""
    lines = source.read_text().splitlines()
    with sqlite3.connect(session) as db:
        specs = db.execute("SELECT job_id, operator_name, start_pos_row, start_pos_col, occurrence "
                           "FROM mutation_specs").fetchall()
        candidates = sorted(
            (int(row), int(col), str(operator), int(occurrence), job) for job, operator, row, col, occurrence in specs
            if not _is_annotation(lines[int(row) - 1] if 0 < int(row) <= len(lines) else "", operator))
        jobs = [c[-1] for c in candidates]
        keep = set(random.Random(seed).sample(jobs, min(n, len(jobs))))
        drop = [(spec[0],) for spec in specs if spec[0] not in keep]
        db.executemany("DELETE FROM mutation_specs WHERE job_id = ?", drop)
        db.executemany("DELETE FROM work_items WHERE job_id = ?", drop)
    return len(jobs)


def _results(session: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(session) as db:
        return [(str(w), str(t), str(d)) for w, t, d in
                db.execute("SELECT worker_outcome, test_outcome, diff FROM work_results")]


def run_module(work: Path, module: str, tests: tuple[str, ...], per_module: int, seed: int,
               env: dict[str, str]) -> tuple[int, int, list[str]]:
    """(killed, survived, survivor diffs) of one module's sample."""
    name = module.replace("/", "_").removesuffix(".py")
    test_command = " ".join([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                             *[f"{CORE_TESTS}/{t}" for t in tests]])
    baseline = subprocess.run(test_command.split(), cwd=work, env=env, capture_output=True, text=True)
    if baseline.returncode != 0:
        raise SystemExit(f"{module}: the tests fail without any mutant:\n{baseline.stdout[-3000:]}")
    config = work / f"{name}.toml"
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(f'packages/core/src/{module}')}\n"
        "timeout = 120.0\nexcluded-modules = []\n"
        f"test-command = {json.dumps(test_command)}\n\n"
        "[cosmic-ray.distributor]\nname = \"local\"\n")
    session = work / f"{name}.sqlite"
    subprocess.run(["cosmic-ray", "init", str(config), str(session)], cwd=work, env=env, check=True)
    total = _sample(session, work / "packages" / "core" / "src" / module, per_module, seed)
    subprocess.run(["cosmic-ray", "exec", str(config), str(session)], cwd=work, env=env, check=True)
    killed = survived = 0
    survivors = []
    for worker, test, diff in _results(session):
        if test == "TestOutcome.SURVIVED" or test.lower().endswith("survived"):
            survived += 1
            survivors.append(diff)
        elif test.lower().endswith("killed") or worker.lower().endswith("abnormal"):
            killed += 1
    print(f"{module}: {killed} killed, {survived} survived of {killed + survived} sampled "
          f"({total} possible)", flush=True)
    return killed, survived, survivors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help=f"default: {', '.join(MODULES)}")
    parser.add_argument("--per-module", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-survival", type=float, default=1.0, help="fail above this rate (0..1)")
    args = parser.parse_args()
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; known: {', '.join(MODULES)}")
    work = Path(tempfile.mkdtemp(prefix="wl-mutation-"))
    try:
        _copy_tree(work)
        env = {**os.environ, "PYTHONPATH": str(work / "packages" / "core" / "src"), "CI": "1",
               "WEIGHTSLAB_LOG_LEVEL": "WARNING"}
        killed = survived = 0
        survivors: list[str] = []
        for module in args.modules or list(MODULES):
            k, s, diffs = run_module(work, module, MODULES[module], args.per_module, args.seed, env)
            killed, survived, survivors = killed + k, survived + s, survivors + diffs
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rate = survived / max(1, killed + survived)
    for diff in survivors:
        print("-- survivor:\n" + diff, flush=True)
    print(f"== mutation smoke: {survived} of {killed + survived} mutants survived (survival rate {rate:.0%})")
    return 1 if rate > args.max_survival else 0


if __name__ == "__main__":
    raise SystemExit(main())
