"""Package boundaries: the core imports no plugin; a plugin imports another only when declared.

The core reaches plugins through hooks only (architecture §1, §9). A plugin that needs another
plugin's capability gets it through a hook (e.g. ``weightslab_server_security``) or declares the
other distribution in its ``pyproject.toml`` and is listed in ``ALLOWED`` with the reason.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest
from wl_testutil import REPO

PACKAGES = REPO / "packages"
PLUGIN_FOLDERS = sorted(p.name for p in PACKAGES.iterdir() if (p / "pyproject.toml").is_file() and p.name != "core")

# (importer folder, imported folder) -> why the import cannot be a hook.
ALLOWED: dict[tuple[str, str], str] = {
    ("grpc_server", "auth"): "the server audits auth failures and refuses an unauthenticated non-loopback bind "
                             "with auth's token settings (weightslab-grpc-server depends on weightslab-auth)",
    ("studio", "auth"): "the launcher creates and reads the dev PKI for Envoy's certificates",
    ("cli", "auth"): "`weightslab demo` creates the dev PKI (extra `demo`; skipped when auth is absent)",
    ("cli", "studio"): "`weightslab demo --studio` starts the Studio (extra `demo`; reported when absent)",
}


def _imported_modules(path: Path) -> list[tuple[str, int]]:
    """Absolute imports in ``path`` (top level and inside functions), and ``import_module("x")``."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            found.append((node.args[0].value, node.lineno))
    return found


def _plugin_imports(folder: str) -> dict[str, list[str]]:
    """Imported plugin folder -> ``file:line`` of every import of it from ``packages/<folder>/src``."""
    own = f"weightslab_{folder}"
    out: dict[str, list[str]] = {}
    for path in sorted((PACKAGES / folder / "src").rglob("*.py")):
        for module, line in _imported_modules(path):
            top = module.split(".")[0]
            if top.startswith("weightslab_") and top != own:
                out.setdefault(top.removeprefix("weightslab_"), []).append(f"{path.relative_to(REPO)}:{line}")
    return out


def _project(folder: str) -> dict:
    return tomllib.loads((PACKAGES / folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _declared(folder: str) -> set[str]:
    project = _project(folder)
    requirements = list(project.get("dependencies", []))
    for extra, items in project.get("optional-dependencies", {}).items():
        if extra != "test":  # a test extra is no runtime declaration
            requirements.extend(items)
    return {req.split(";")[0].split("[")[0].split("@")[0].split(">")[0].split("=")[0].split("<")[0].strip()
            for req in requirements}


def test_the_scanner_finds_imports_everywhere(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("import weightslab_a\nfrom weightslab_b.c import d\ndef f():\n    import weightslab_e.f\n"
                      "import importlib\nimportlib.import_module('weightslab_g')\nfrom . import weightslab_local\n")
    assert sorted(m for m, _ in _imported_modules(source)) == ["importlib", "weightslab_a", "weightslab_b.c",
                                                               "weightslab_e.f", "weightslab_g"]


def test_core_imports_no_plugin_package() -> None:
    found = [f"{path.relative_to(REPO)}:{line}: {module}"
             for path in sorted((PACKAGES / "core" / "src").rglob("*.py"))
             for module, line in _imported_modules(path) if module.split(".")[0].startswith("weightslab_")]
    assert not found, "the core must reach plugins through hooks only:\n" + "\n".join(found)


@pytest.mark.parametrize("folder", PLUGIN_FOLDERS)
def test_plugin_to_plugin_imports_are_declared_and_allowed(folder: str) -> None:
    for imported, where in _plugin_imports(folder).items():
        assert (folder, imported) in ALLOWED, (
            f"{folder} imports weightslab_{imported} ({', '.join(where)}): use a hook, or declare "
            f"the dependency and add it to ALLOWED with the reason")
        distribution = _project(imported)["name"]
        assert distribution in _declared(folder), (
            f"packages/{folder}/pyproject.toml must declare {distribution} (dependencies or an extra): "
            f"imported at {', '.join(where)}")


def test_the_allow_list_has_no_stale_entries() -> None:
    used = {(folder, imported) for folder in PLUGIN_FOLDERS for imported in _plugin_imports(folder)}
    assert set(ALLOWED) <= used, f"no longer imported, remove from ALLOWED: {sorted(set(ALLOWED) - used)}"


def test_examples_use_only_the_core() -> None:
    for path in sorted((REPO / "examples").rglob("src/**/*.py")):
        plugins = [m for m, _ in _imported_modules(path)
                   if m.split(".")[0].startswith("weightslab_") and not m.startswith("weightslab_example_plugin")]
        assert not plugins, f"{path.relative_to(REPO)} imports {plugins}"
