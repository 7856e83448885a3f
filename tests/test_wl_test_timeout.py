"""WL_TEST_TIMEOUT: the repository's conftest.py makes a hung test fail instead of hanging the run.

Each case runs pytest in a subprocess on a throw-away folder holding a copy of the repository's
``conftest.py`` (taken at test time, so the file under test is the real one) and a test file.
The variable comes from the environment or from a ``.env`` file, like every other setting.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TESTS = textwrap.dedent("""
    import threading

    def test_hangs():
        threading.Event().wait(60)  # a hang (bounded only so a broken timeout cannot block forever)

    def test_slow_but_fine():
        threading.Event().wait(1.5)  # takes 1.5 s of "work"

    def test_after_the_hang():
        assert True
""")


def run_pytest(tmp_path: Path, selection: str, env_value: str | None = None,
               dotenv_value: str | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    folder = tmp_path / "suite"
    folder.mkdir(parents=True)
    shutil.copy(REPO / "conftest.py", folder / "conftest.py")
    (folder / "test_timeouts.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "WL_", "WEIGHTSLAB_"))}
    if dotenv_value is not None:
        (folder / ".env").write_text(f"WL_TEST_TIMEOUT={dotenv_value}\n")  # found from the cwd
    else:
        (tmp_path / "empty.env").write_text("")
        env["WEIGHTSLAB_ENV_FILE"] = str(tmp_path / "empty.env")  # no stray .env above tmp counts
    if env_value is not None:
        env["WL_TEST_TIMEOUT"] = env_value
    started = time.monotonic()
    selected = [f"test_timeouts.py::{name}" for name in selection.split()]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selected],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    return done, time.monotonic() - started


def test_a_hung_test_fails_after_wl_test_timeout_from_the_environment(tmp_path: Path) -> None:
    done, elapsed = run_pytest(tmp_path, "test_hangs", env_value="1")
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Timeout" in output and "test_hangs" in output  # reported, with the hung test's stack
    assert elapsed < 30, f"the run took {elapsed:.1f}s: the hung test was not stopped after 1s"


def test_wl_test_timeout_from_a_dotenv_file(tmp_path: Path) -> None:
    done, elapsed = run_pytest(tmp_path, "test_hangs", dotenv_value="1")
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "Timeout" in output, output
    assert elapsed < 30


def test_the_value_is_the_limit(tmp_path: Path) -> None:
    """A 1.5 s test passes under WL_TEST_TIMEOUT=20 and fails under 0.5."""
    done, _ = run_pytest(tmp_path / "generous", "test_slow_but_fine", env_value="20")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    done, _ = run_pytest(tmp_path / "tight", "test_slow_but_fine", env_value="0.5")
    assert done.returncode != 0 and "Timeout" in done.stdout + done.stderr


def test_a_bad_value_stops_the_run_naming_the_variable(tmp_path: Path) -> None:
    done, _ = run_pytest(tmp_path, "test_slow_but_fine", env_value="soon")
    assert done.returncode != 0
    assert "WL_TEST_TIMEOUT='soon': expected a positive number of seconds" in done.stdout + done.stderr


def test_the_run_goes_on_after_a_hung_test(tmp_path: Path) -> None:
    done, elapsed = run_pytest(tmp_path, "test_hangs test_after_the_hang", env_value="1")
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "1 failed, 1 passed" in done.stdout, output
    assert elapsed < 30
