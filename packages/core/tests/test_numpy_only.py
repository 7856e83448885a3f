"""The core works with numpy alone: torch import is blocked in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def test_numpy_only_training_loop(tmp_path):
    script = textwrap.dedent("""
        import json, sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import numpy as np
        import weightslab as wl

        rng = np.random.default_rng(0)
        x = rng.normal(size=(100, 4)); y = (x[:, 0] > 0).astype(np.int64)
        w = np.zeros(4)
        hp = wl.watch_or_edit({"lr": 0.1}, flag="hp")
        loader = wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=10, shuffle=True)

        def logistic_loss(scores, targets):
            p = 1 / (1 + np.exp(-scores))
            return -(targets * np.log(p + 1e-9) + (1 - targets) * np.log(1 - p + 1e-9))

        loss = wl.watch_or_edit(logistic_loss, flag="loss", name="loss")
        for epoch in range(3):
            for xb, ids, yb in loader:
                with wl.guard_training_context:
                    scores = xb @ w
                    values = loss(scores, yb, batch_ids=ids)
                    grad = xb.T @ (1 / (1 + np.exp(-scores)) - yb) / len(yb)
                    w -= hp["lr"] * grad
        wl.discard_samples([0, 1])
        seen = [int(i) for _, ids, _ in loader for i in ids]
        df = wl.dataframe()
        print(json.dumps({"age": wl.get_age(), "rows": len(df), "losses": int(df["loss"].notna().sum()),
                          "seen": len(seen), "zero_seen": 0 in seen,
                          "torch_loaded": sys.modules.get("torch") is not None}))
    """)
    env = {"WEIGHTSLAB_ROOT_LOG_DIR": str(tmp_path / "root"), "PATH": "/usr/bin:/bin",
           "WEIGHTSLAB_DISABLED_PLUGINS": "data_cache"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"age": 30, "rows": 100, "losses": 100, "seen": 98, "zero_seen": False,
                      "torch_loaded": False}
