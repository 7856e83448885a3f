"""Regenerate the checked-in Python stubs of ``proto/weightslab/v1/experiment.proto``.

Usage (from anywhere)::

    python packages/grpc_server/scripts/gen_proto.py            # rewrite _generated/
    python packages/grpc_server/scripts/gen_proto.py --check    # exit 1 if out of date

The proto keeps its canonical name ``weightslab/v1/experiment.proto`` (what reflection
shows); the generated modules are moved flat into ``weightslab_grpc_server/_generated``
and the stub's import is made relative, so nothing shadows the ``weightslab`` package.
Needs ``grpcio-tools``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = PACKAGE_ROOT / "proto"
PROTO_FILE = "weightslab/v1/experiment.proto"
OUT_DIR = PACKAGE_ROOT / "src" / "weightslab_grpc_server" / "_generated"
GENERATED = ("experiment_pb2.py", "experiment_pb2.pyi", "experiment_pb2_grpc.py")
_ABSOLUTE_IMPORT = "from weightslab.v1 import experiment_pb2 as"
_RELATIVE_IMPORT = "from . import experiment_pb2 as"


def generate(out_dir: Path) -> list[Path]:
    """Write the generated files into ``out_dir``; returns their paths."""
    from grpc_tools import protoc

    try:
        from importlib.resources import files

        well_known = str(files("grpc_tools") / "_proto")
    except Exception:  # pragma: no cover - very old grpc_tools
        well_known = ""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wl-protoc-") as tmp:
        args = ["grpc_tools.protoc", f"-I{PROTO_ROOT}"]
        if well_known:
            args.append(f"-I{well_known}")
        args += [f"--python_out={tmp}", f"--pyi_out={tmp}", f"--grpc_python_out={tmp}",
                 str(PROTO_ROOT / PROTO_FILE)]
        status = protoc.main(args)
        if status != 0:
            raise RuntimeError(f"protoc failed with status {status} on {PROTO_ROOT / PROTO_FILE}")
        produced = Path(tmp) / Path(PROTO_FILE).parent
        written = []
        for name in GENERATED:
            source = produced / name
            target = out_dir / name
            if name.endswith("_grpc.py"):
                text = source.read_text(encoding="utf-8")
                if _ABSOLUTE_IMPORT not in text:
                    raise RuntimeError(f"{name}: expected import line {_ABSOLUTE_IMPORT!r} not found")
                target.write_text(text.replace(_ABSOLUTE_IMPORT, _RELATIVE_IMPORT), encoding="utf-8")
            else:
                shutil.copyfile(source, target)
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the checked-in files")
    args = parser.parse_args(argv)
    if not args.check:
        for path in generate(OUT_DIR):
            print(f"wrote {path}")
        return 0
    with tempfile.TemporaryDirectory(prefix="wl-protoc-check-") as tmp:
        stale = [p.name for p in generate(Path(tmp))
                 if not (OUT_DIR / p.name).exists() or (OUT_DIR / p.name).read_bytes() != p.read_bytes()]
    if stale:
        print("out of date: " + ", ".join(stale) + "; run scripts/gen_proto.py", file=sys.stderr)
        return 1
    print("generated stubs are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
