"""The newcomer's entry points: the README's two commands, `.ci/run`, and the nox sessions."""

from __future__ import annotations

import ast
import os
import re

from wl_testutil import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert block and text.index(block.group(0)) < text.index("\n## "), "the commands come first"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_install_and_test_commands() -> None:
    install, test = _readme_commands()
    assert install == 'pip install -c constraints.txt ".[all]" && weightslab demo'
    assert test == "python3 -m pip install -q -c constraints.txt nox && python3 -m nox"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    script = REPO / ".ci" / "run"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    commands = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == _readme_commands()[1]


def _nox_sessions() -> tuple[list[str], set[str], set[str]]:
    tree = ast.parse((REPO / "noxfile.py").read_text())
    default: list[str] = []
    packages: set[str] = set()
    decorated: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "nox.options.sessions":
            default = ast.literal_eval(node.value)
        if isinstance(node, ast.AnnAssign) and ast.unparse(node.target) == "PACKAGE_NEEDS":
            assert isinstance(node.value, ast.Dict)
            packages = {ast.literal_eval(key) for key in node.value.keys if key is not None}
        if isinstance(node, ast.FunctionDef) and any("nox.session" in ast.unparse(d) for d in node.decorator_list):
            decorated.add(node.name)
    return default, packages, decorated


def test_nox_has_a_session_per_package_plus_integration_lint_typecheck() -> None:
    default, packages, decorated = _nox_sessions()
    folders = {p.name for p in (REPO / "packages").iterdir() if (p / "pyproject.toml").exists()}
    assert packages == folders
    assert {"integration", "lint", "typecheck", "bench"} <= decorated
    assert set(default) == folders | {"integration", "lint", "typecheck"}  # bench only on request
