"""The checked-in stubs are exactly what scripts/gen_proto.py generates from the .proto."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("grpc_tools")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gen_proto.py"


def _gen_module():
    spec = importlib.util.spec_from_file_location("gen_proto", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_stubs_in_sync(tmp_path: Path) -> None:
    gen = _gen_module()
    written = gen.generate(tmp_path)
    assert sorted(p.name for p in written) == sorted(gen.GENERATED)
    for path in written:
        checked_in = gen.OUT_DIR / path.name
        assert checked_in.exists(), f"{checked_in} missing: run {SCRIPT}"
        assert checked_in.read_bytes() == path.read_bytes(), f"{path.name} is stale: run {SCRIPT}"


def test_stub_imports_relative_and_descriptor_name() -> None:
    from weightslab_grpc_server._generated import experiment_pb2, experiment_pb2_grpc

    assert experiment_pb2.DESCRIPTOR.name == "weightslab/v1/experiment.proto"
    assert experiment_pb2.DESCRIPTOR.package == "weightslab.v1"
    assert hasattr(experiment_pb2_grpc, "ExperimentServiceStub")
    text = (_gen_module().OUT_DIR / "experiment_pb2_grpc.py").read_text()
    assert "from . import experiment_pb2" in text
