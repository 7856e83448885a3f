"""The test gate checked: the suite twice in random order, then two copies of it at once.

Each test folder runs in its own pytest process (the packages' helper modules share names with
nothing, but their test modules may). Random order: pytest-random-order, module buckets (modules
shuffled, tests shuffled within each), a seed per round printed so a failure can be replayed with
``--random-order-seed``. Afterwards no ``.hypothesis/`` may be in the working tree and no
``/tmp/wl-cli-tests-*`` folder may be left by the runs.

    python tools/gate.py [--rounds 2] [--seed N] [--no-parallel] [test folders...]
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def default_folders() -> list[str]:
    folders = sorted(str(p.relative_to(REPO)) for p in (REPO / "packages").glob("*/tests") if p.is_dir())
    return [*folders, "tests"]


def run_suite(folders: list[str], seed: int | None, label: str) -> list[str]:
    """Run every folder; returns the folders that failed."""
    failed = []
    for folder in folders:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", folder]
        if seed is not None:
            command += ["-p", "random_order", "--random-order-bucket=module", f"--random-order-seed={seed}"]
        started = time.monotonic()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
        print(f"[{label}] {folder}: {summary} ({time.monotonic() - started:.0f}s)", flush=True)
        if done.returncode not in (0, 5):  # 5: nothing collected (e.g. a package without tests)
            failed.append(folder)
            print(done.stdout[-6000:] + done.stderr[-3000:], flush=True)
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--rounds", type=int, default=2, help="random-order rounds (default 2)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first round (default: random)")
    parser.add_argument("--no-parallel", action="store_true", help="skip the two-copies-at-once round")
    args = parser.parse_args()
    folders = args.folders or default_folders()
    leftovers_before = set(glob.glob("/tmp/wl-cli-tests-*"))
    first = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 30)
    problems: list[str] = []
    for n in range(args.rounds):
        seed = first + n
        print(f"== random order, round {n + 1}: --random-order-seed={seed}", flush=True)
        problems += [f"random order (seed {seed}): {f}" for f in run_suite(folders, seed, f"seed {seed}")]
    if not args.no_parallel:
        print("== two copies of the suite at once", flush=True)
        results: dict[str, list[str]] = {}
        threads = [threading.Thread(target=lambda name=name: results.__setitem__(name, run_suite(folders, None, name)))
                   for name in ("copy A", "copy B")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        problems += [f"in parallel ({name}): {f}" for name, failed in results.items() for f in failed]
    if (REPO / ".hypothesis").exists():
        problems.append(".hypothesis/ was created in the working tree")
    left = set(glob.glob("/tmp/wl-cli-tests-*")) - leftovers_before
    if left:
        problems.append(f"left behind: {sorted(left)}")
    print("\n".join(["== gate: FAILED", *problems]) if problems else "== gate: passed", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
