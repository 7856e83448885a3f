"""``import weightslab`` mutates no environment variable, creates no file, opens no socket and
loads no heavy dependency. Checked in a fresh interpreter, where the import really happens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PROBE = textwrap.dedent('''
    import json, os, socket, sys

    def refuse(*args, **kwargs):
        raise AssertionError("import weightslab opened a socket")

    socket.socket = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    env_before = dict(os.environ)
    files_before = sorted(os.listdir("."))
    home_before = sorted(os.listdir(os.path.expanduser("~")))
    modules_before = set(sys.modules)

    import weightslab
    weightslab.__version__, dir(weightslab)  # touching the package object stays cheap too

    print(json.dumps({
        "env_changed": sorted(k for k in set(env_before) | set(os.environ)
                              if env_before.get(k) != os.environ.get(k)),
        "files": sorted(os.listdir(".")) == files_before,
        "home": sorted(os.listdir(os.path.expanduser("~"))) == home_before,
        "new_modules": sorted(set(sys.modules) - modules_before),
    }))
''')

FORBIDDEN = ("torch", "grpc", "h5py", "pandas", "pydantic", "pydantic_settings")


def test_import_weightslab_has_no_side_effects(tmp_path: Path) -> None:
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    (cwd / ".env").write_text("WEIGHTSLAB_LOG_LEVEL=DEBUG\nWL_FROM_DOTENV=1\n")  # must not be loaded
    env = {**os.environ, "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["env_changed"] == []
    assert report["files"] and report["home"], "import weightslab created a file"
    assert sorted(os.listdir(cwd)) == [".env"] and os.listdir(home) == []
    loaded = {name.split(".")[0] for name in report["new_modules"]}
    assert not loaded & set(FORBIDDEN), f"import weightslab loaded {sorted(loaded & set(FORBIDDEN))}"
    assert not any(name.startswith("weightslab_") for name in loaded), "the core imported a plugin package"
