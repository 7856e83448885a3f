"""Run every ``benchmarks/*_bench.py`` (each exposes ``run() -> dict``) and write JSON results.

Each benchmark reports ratios against a baseline measured in the same run, because the
machine is shared and absolute timings are noisy.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="bench-results", help="output folder")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    summary = {}
    for path in sorted(HERE.glob("*_bench.py")):
        name = path.stem.removesuffix("_bench")
        if args.names and name not in args.names:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        started = time.time()
        try:
            spec.loader.exec_module(module)
            result = module.run()
            status = "ok"
        except Exception:
            result = {"error": traceback.format_exc()}
            status = "error"
            failures += 1
        record = {"benchmark": name, "status": status, "seconds": round(time.time() - started, 2),
                  "python": platform.python_version(), "machine": platform.machine(), "result": result}
        (out / f"{name}.json").write_text(json.dumps(record, indent=2, default=str))
        summary[name] = record
        print(json.dumps({name: record}, indent=2, default=str), flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
