"""A CLI-only ``wl.serve`` loads no dependency of a feature it does not run (issue 19): no grpc
(no gRPC server; the watchdog's in-flight tracker is a gRPC interceptor), no cryptography (TLS
off), no PIL (no preview drawn: the background overview is off). Checked in a fresh interpreter with every installed plugin, where
the imports really happen; a command over the socket and a training loop run too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_testutil import empty_env_file

TIMEOUT = max(60.0, float(os.environ.get("WL_TEST_TIMEOUT", "60") or 60))
NOT_LOADED = ("grpc", "cryptography", "PIL")

PROBE = textwrap.dedent('''
    import json, socket, sys
    import numpy as np
    import weightslab as wl

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)); y = (x[:, 0] > 0).astype(np.int64)
    loader = wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=16, shuffle=True)
    loss = wl.watch_or_edit(lambda s, t: (s - t) ** 2, flag="loss", name="loss")
    services = wl.serve(serving_cli=True)
    for xb, ids, yb in loader:
        with wl.guard_training_context:
            loss(xb[:, 0], yb, batch_ids=ids)
    with socket.create_connection(("127.0.0.1", services["cli"].port), timeout=30) as sock:
        reader = sock.makefile("rb")
        reader.readline()  # greeting
        sock.sendall(json.dumps({"command": "status"}).encode() + b"\\n")
        status = json.loads(reader.readline())
    watchdog = services.get("watchdog")
    print(json.dumps({"services": sorted(services), "status_ok": status.get("ok"),
                      "watchdog_running": bool(watchdog is not None and watchdog.running),
                      "loaded": sorted({m.split(".")[0] for m in sys.modules} & set(NOT_LOADED))}))
''')


@pytest.mark.parametrize("watchdog", [False, True], ids=["watchdog-disabled", "watchdog-on"])
def test_cli_only_serve_loads_no_grpc_cryptography_or_pil(tmp_path: Path, watchdog: bool) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GRPC_", "CLI_", "WEIGHTSLAB_", "WL_", "AUDIT_"))}
    env.update({"HOME": str(tmp_path), "WEIGHTSLAB_ROOT_LOG_DIR": str(tmp_path / "root"),
                "WEIGHTSLAB_ENV_FILE": str(empty_env_file()), "WEIGHTSLAB_LOG_LEVEL": "WARNING",
                "CLI_HOST": "127.0.0.1", "CLI_PORT": "0", "GRPC_TLS_ENABLED": "0",
                "WEIGHTSLAB_DISABLE_WATCHDOGS": "0" if watchdog else "1",
                # the thumbnail overview renders previews (and so loads PIL) once training is idle
                "WL_PRELOAD_IMAGE_OVERVIEW": "0"})
    script = f"NOT_LOADED = {NOT_LOADED!r}\n" + PROBE
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status_ok"] is True and "cli" in report["services"]
    assert report["watchdog_running"] is watchdog  # the watchdog itself runs when enabled
    assert report["loaded"] == [], f"a CLI-only serve loaded {report['loaded']}"
