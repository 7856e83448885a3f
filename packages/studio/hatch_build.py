"""Hatch build hook: put the built web UI into ``src/weightslab_studio/static`` before packaging.

- Built already (``static/index.html`` exists): nothing to do (a wheel built from an sdist, or a
  checkout where ``npm run build`` ran).
- Otherwise ``npm ci && npm run build`` in ``frontend/`` (Vite writes ``static/``); a clear error
  when npm is missing.
- ``WEIGHTSLAB_STUDIO_SKIP_UI=1``: package without the UI; a marker file makes
  ``weightslab studio`` say so instead of serving an empty folder.
- Editable installs use the source tree as it is (``weightslab studio`` says how to build).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SKIP_VARIABLE = "WEIGHTSLAB_STUDIO_SKIP_UI"
MARKER = "UI_NOT_BUILT"  # weightslab_studio.launcher.SKIPPED_UI_MARKER
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


class UIBuildError(RuntimeError):
    pass


def skip_requested(environ: dict[str, str] | os._Environ[str]) -> bool:
    raw = environ.get(SKIP_VARIABLE, "").strip().lower()
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise UIBuildError(f"{SKIP_VARIABLE}={environ.get(SKIP_VARIABLE)!r}: expected a boolean "
                       "(1/true/yes/on or 0/false/no/off)")


def build_ui(root: Path, environ: dict[str, str] | os._Environ[str], log: Any = print) -> str:
    """Make sure ``static/`` holds the UI (or the skip marker); returns what was done."""
    static = root / "src" / "weightslab_studio" / "static"
    frontend = root / "frontend"
    if skip_requested(environ):
        if (static / "index.html").is_file():
            return "skipped (WEIGHTSLAB_STUDIO_SKIP_UI=1; an existing build is packaged)"
        static.mkdir(parents=True, exist_ok=True)
        (static / MARKER).write_text(f"built with {SKIP_VARIABLE}=1: no web UI in this package\n")
        return "skipped (WEIGHTSLAB_STUDIO_SKIP_UI=1: packaged without the web UI)"
    if (static / "index.html").is_file():
        return "already built"
    if not (frontend / "package.json").is_file():
        raise UIBuildError(f"the Studio web UI is not built ({static} has no index.html) and its sources are "
                           f"not here ({frontend}/package.json); set {SKIP_VARIABLE}=1 to build without the UI")
    npm = shutil.which("npm", path=environ.get("PATH"))
    if npm is None:
        raise UIBuildError("npm is not installed: building weightslab-studio from source runs `npm ci && npm run "
                           f"build` in {frontend} (Node.js 20 or newer); install Node.js, or set {SKIP_VARIABLE}=1 "
                           "to build the package without the web UI")
    for step in (["ci", "--no-audit", "--no-fund"], ["run", "build"]):
        log(f"weightslab-studio: npm {' '.join(step)} in {frontend}")
        result = subprocess.run([npm, *step], cwd=frontend, env=dict(environ), stdout=sys.stderr, check=False)
        if result.returncode != 0:
            raise UIBuildError(f"`npm {' '.join(step)}` failed (exit {result.returncode}) in {frontend}; set "
                               f"{SKIP_VARIABLE}=1 to build without the web UI")
    if not (static / "index.html").is_file():
        raise UIBuildError(f"`npm run build` did not write {static / 'index.html'}")
    (static / MARKER).unlink(missing_ok=True)
    return "built"


class StudioUIBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "editable":
            return
        done = build_ui(Path(self.root), os.environ, log=self.app.display_info)
        self.app.display_info(f"weightslab-studio web UI: {done}")
