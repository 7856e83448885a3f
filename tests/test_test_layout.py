"""Test folders follow one convention, so a reader knows what each file is.

In ``tests/`` and ``packages/*/tests/`` every Python file is a test module (``test_*.py``), a
``conftest.py``, the folder's helper module ``<prefix>_testutil.py`` (imported by its tests; the
prefix names the package, so helpers never shadow each other when several suites run in one
pytest process), or a script a test runs as a child process (it has a ``__main__`` block).
"""

from __future__ import annotations

import ast
from pathlib import Path

from wl_testutil import REPO

FOLDERS = [REPO / "tests", *sorted((REPO / "packages").glob("*/tests"))]


def _is_script(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body)


def test_every_file_in_a_test_folder_follows_the_convention() -> None:
    wrong = []
    for folder in FOLDERS:
        for path in sorted(folder.glob("*.py")):
            name = path.name
            if name.startswith("test_") or name == "conftest.py" or name.endswith("_testutil.py"):
                continue
            if not _is_script(path):
                wrong.append(str(path.relative_to(REPO)))
    assert not wrong, ("helper modules are named <package>_testutil.py (child-process scripts have a "
                       f"__main__ block): {wrong}")


def test_one_helper_module_per_folder_with_a_unique_name() -> None:
    seen: dict[str, Path] = {}
    for folder in FOLDERS:
        helpers = sorted(folder.glob("*_testutil.py"))
        assert len(helpers) <= 1, f"{folder.relative_to(REPO)}: one helper module, found {[h.name for h in helpers]}"
        for helper in helpers:
            assert helper.name not in seen, f"{helper.name} in both {seen[helper.name]} and {folder}"
            seen[helper.name] = folder


def test_no_test_imports_from_a_conftest() -> None:
    # ``conftest`` is a different module in every folder: importing helpers from it breaks as
    # soon as two suites run in one process. Helpers live in the folder's _testutil module.
    offenders = []
    for folder in FOLDERS:
        for path in sorted(folder.glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                if "conftest" in names:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders, f"import helpers from <package>_testutil.py, not conftest: {offenders}"
