"""tools/settings_docs.py: the package READMEs' settings tables and the root .env are generated
from the settings sections and kept in sync (``--check``)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
from weightslab.plugins import create_plugin_manager
from weightslab.settings import load_config
from wl_testutil import ENV_FILE, REPO, SAMPLES


def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wl_settings_docs", REPO / "tools" / "settings_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def copy_checkout(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for pyproject in (REPO / "packages").glob("*/pyproject.toml"):
        target = root / "packages" / pyproject.parent.name
        target.mkdir(parents=True)
        shutil.copy(pyproject, target)
        shutil.copy(pyproject.parent / "README.md", target)
    shutil.copy(REPO / ".env", root / ".env")
    return root


def test_readmes_and_dotenv_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert tool().main(["--check"]) == 0, capsys.readouterr().err


def test_check_reports_stale_files_and_a_run_fixes_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs, root = tool(), copy_checkout(tmp_path)
    assert docs.main(["--check", "--root", str(root)]) == 0
    readme = root / "packages" / "cli" / "README.md"
    readme.write_text(readme.read_text().replace("`CLI_PORT` | `50051`", "`CLI_PORT` | `1`"))
    (root / ".env").write_text((root / ".env").read_text().replace("# CLI_PORT=50051\n", ""))
    assert docs.main(["--check", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "packages/cli/README.md" in err and ".env" in err and "packages/core/README.md" not in err
    assert docs.main(["--root", str(root)]) == 0
    assert docs.main(["--check", "--root", str(root)]) == 0


def test_only_the_region_between_markers_is_written(tmp_path: Path) -> None:
    docs, root = tool(), copy_checkout(tmp_path)
    readme = root / "packages" / "agent" / "README.md"
    readme.write_text("# agent\n\nIntro prose.\n\n## Settings\n\n<!-- settings-table -->\n\n## Later\n\nMore prose.\n")
    assert docs.main(["--root", str(root)]) == 0
    text = readme.read_text()
    assert text.startswith("# agent\n\nIntro prose.\n\n## Settings\n\n<!-- settings-table -->\n")
    assert text.endswith("<!-- /settings-table -->\n\n## Later\n\nMore prose.\n")  # closing marker inserted
    assert "| `OPENROUTER_API_KEY` | unset |" in text and "| `AGENT_CONFIG_PATH` | unset |" in text
    before = text
    assert docs.main(["--root", str(root)]) == 0 and readme.read_text() == before  # idempotent


def test_a_readme_without_the_marker_is_an_error(tmp_path: Path) -> None:
    docs, root = tool(), copy_checkout(tmp_path)
    (root / "packages" / "studio" / "README.md").write_text("# studio\n")
    with pytest.raises(SystemExit, match="settings-table"):
        docs.main(["--check", "--root", str(root)])


def test_readme_tables_list_each_packages_variables() -> None:
    tables = {}
    for readme in (REPO / "packages").glob("*/README.md"):
        text = readme.read_text()
        region = text.split("<!-- settings-table -->", 1)[1].split("<!-- /settings-table -->", 1)[0]
        tables[readme.parent.name] = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", region, re.MULTILINE))
    documented = set().union(*tables.values())
    assert documented == set(SAMPLES) | {ENV_FILE}
    owners = {"weightslab-" + name.replace("_", "-"): name for name in tables}
    owners["weightslab-grpc-server"] = "grpc_server"
    owners["weightslab-data-cache"] = "data_cache"
    for variable, sample in SAMPLES.items():
        assert variable in tables[owners[sample.owner]], (variable, sample.owner)


def test_dotenv_lists_every_variable_commented_with_its_default(tmp_path: Path) -> None:
    text = (REPO / ".env").read_text()
    assert not [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    listed = dict(re.findall(r"^# ([A-Z][A-Z0-9_]*)=(.*)$", text, re.MULTILINE))
    assert set(listed) == set(SAMPLES) | {ENV_FILE}
    # uncommenting a line gives the default back: same effective value as not setting it at all
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    pm = create_plugin_manager(environ={})
    defaults = load_config(environ={}, cwd=cwd, pm=pm, validate=False).as_json()
    uncommented = "".join(f"{k}={v}\n" for k, v in listed.items() if v and k != ENV_FILE)
    (cwd / ".env").write_text(uncommented)
    data = load_config(environ={}, cwd=cwd, pm=pm, validate=False).as_json()
    for variable, value in listed.items():
        if value and variable != ENV_FILE:
            assert data[variable]["source"] == ".env"
            assert data[variable]["value"] == defaults[variable]["value"], variable
