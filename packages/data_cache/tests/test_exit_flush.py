"""A script that never calls shutdown keeps its last records: the experiment flushes at interpreter
exit. Checked with a real interpreter that exits normally while records are still queued."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from weightslab.experiment import Experiment
from weightslab.plugins import create_plugin_manager

ENV = {"WEIGHTSLAB_DISABLED_PLUGINS": "grpc_server,cli,watchdog,auth,agent,studio", "WEIGHTSLAB_LOG_LEVEL": "WARNING"}

SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    from weightslab.experiment import Experiment
    from weightslab.plugins import create_plugin_manager

    env = json.loads(sys.argv[2])
    exp = Experiment(kwargs={"root_log_dir": sys.argv[1]}, environ=env, pm=create_plugin_manager(env))
    exp.start()
    # Nothing is written in the background during the script: the store flushes only when asked
    # and the recorder's thread is stopped, so the records are still queued at exit.
    exp.store.flush_interval = 3600
    exp.recorder._stop.set()
    exp.recorder._wake.set()
    exp.recorder._thread.join(10)
    exp.recorder._thread = None
    ids = [str(i) for i in range(10)]
    exp.register_samples("train", ids, np.arange(10) % 3)
    for step in range(3):
        exp.record("loss", np.full(10, float(step)), ids, split="train")
        exp.step_end()
    print("RECORDED", len(exp.recorder._queue) > 0, flush=True)
    # no exp.shutdown(): the script just ends
''')


def test_records_queued_at_a_normal_exit_reach_the_store(tmp_path: Path) -> None:
    import json

    root = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEIGHTSLAB_", "WL_"))}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(root), json.dumps(ENV)], capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["RECORDED", "True"], done.stdout + done.stderr  # queued until exit

    again = Experiment(kwargs={"root_log_dir": root}, environ=ENV, pm=create_plugin_manager(ENV))
    again.start()
    try:
        rows, steps, values, _ = again.history.arrays("loss")
        assert len(rows) == 30 and sorted(set(steps.tolist())) == [0, 1, 2]
        np.testing.assert_allclose(np.sort(values), np.repeat([0.0, 1.0, 2.0], 10))
        assert [p.value for p in again.history.curve("loss", split="train")] == [0.0, 1.0, 2.0]
    finally:
        again.shutdown()
