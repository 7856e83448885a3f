"""The hatch build hook: skip when built, clear error without npm, the skip variable, and real
wheels (built by pip through hatchling) that carry the UI or the no-UI marker."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from weightslab_studio.errors import StudioError
from weightslab_studio.launcher import SKIPPED_UI_MARKER, check_static_dir

PACKAGE = Path(__file__).resolve().parents[1]
pytest.importorskip("hatchling")


def hook_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("studio_hatch_build", PACKAGE / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def package_copy(tmp_path: Path, *, built: bool) -> Path:
    """The package's sources (no node_modules, no build) in a throw-away folder."""
    root = tmp_path / "studio"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("node_modules", "static", "__pycache__", "tests",
                                                                  "*.egg-info"))
    if built:
        static = root / "src" / "weightslab_studio" / "static"
        (static / "assets").mkdir(parents=True)
        (static / "index.html").write_text("<!doctype html><title>built</title>\n")
        (static / "assets" / "app-abc.js").write_text("1\n")
    return root


def no_npm_path(tmp_path: Path) -> str:
    folder = tmp_path / "bin-without-npm"
    folder.mkdir(exist_ok=True)
    return str(folder)


def test_already_built_is_left_alone_even_without_npm(tmp_path: Path) -> None:
    root = package_copy(tmp_path, built=True)
    assert hook_module().build_ui(root, {"PATH": no_npm_path(tmp_path)}) == "already built"


def test_missing_npm_is_a_clear_error(tmp_path: Path) -> None:
    hook = hook_module()
    root = package_copy(tmp_path, built=False)
    with pytest.raises(hook.UIBuildError) as err:
        hook.build_ui(root, {"PATH": no_npm_path(tmp_path)})
    assert str(err.value).startswith("npm is not installed: building weightslab-studio from source runs "
                                     "`npm ci && npm run build`")
    assert "WEIGHTSLAB_STUDIO_SKIP_UI=1" in str(err.value)


def test_skip_variable_packages_no_ui_and_the_launcher_says_so(tmp_path: Path) -> None:
    hook = hook_module()
    root = package_copy(tmp_path, built=False)
    assert "packaged without the web UI" in hook.build_ui(root, {"PATH": no_npm_path(tmp_path),
                                                                 "WEIGHTSLAB_STUDIO_SKIP_UI": "1"})
    static = root / "src" / "weightslab_studio" / "static"
    assert (static / SKIPPED_UI_MARKER).is_file() and not (static / "index.html").exists()
    with pytest.raises(StudioError, match="built without its web UI"):
        check_static_dir(static)
    with pytest.raises(hook.UIBuildError, match="WEIGHTSLAB_STUDIO_SKIP_UI='maybe': expected a boolean"):
        hook.build_ui(root, {"WEIGHTSLAB_STUDIO_SKIP_UI": "maybe"})


def _wheel(root: Path, out: Path, **env: str) -> zipfile.ZipFile:
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                             "--wheel-dir", str(out), str(root)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **env})
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("weightslab_studio-*.whl")
    return zipfile.ZipFile(wheel)


def test_a_wheel_built_from_source_carries_the_built_ui(tmp_path: Path) -> None:
    root = package_copy(tmp_path, built=True)
    without_npm = f"{Path(sys.executable).parent}{os.pathsep}{no_npm_path(tmp_path)}"
    names = set(_wheel(root, tmp_path / "dist", PATH=without_npm).namelist())  # built: npm never needed
    assert "weightslab_studio/static/index.html" in names
    assert "weightslab_studio/static/assets/app-abc.js" in names
    assert "weightslab_studio/launcher.py" in names


def test_a_wheel_with_the_skip_variable_says_it_has_no_ui(tmp_path: Path) -> None:
    root = package_copy(tmp_path, built=False)
    names = set(_wheel(root, tmp_path / "dist", WEIGHTSLAB_STUDIO_SKIP_UI="1").namelist())
    assert f"weightslab_studio/static/{SKIPPED_UI_MARKER}" in names
    assert "weightslab_studio/static/index.html" not in names


def test_a_wheel_without_npm_fails_with_the_message(tmp_path: Path) -> None:
    root = package_copy(tmp_path, built=False)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{no_npm_path(tmp_path)}"}
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                             "--wheel-dir", str(tmp_path / "dist"), str(root)], capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode != 0
    assert "npm is not installed" in result.stdout + result.stderr
