"""Instrumentation overhead: the same training loop plain vs with WeightsLab (batch 64, CPU).

Target: median step-time ratio <= 1.05 with per-sample loss recording every step.
Plain and instrumented epochs are interleaved so both see the same machine load.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any


def _data(n: int = 4096) -> Any:
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 16, 16, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return torch.utils.data.TensorDataset(x, y)


def _model() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32 * 16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))


def run(epochs: int = 4, batch_size: int = 64) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("WEIGHTSLAB_ROOT_LOG_DIR", tempfile.mkdtemp(prefix="wl-bench-"))
    os.environ.setdefault("WEIGHTSLAB_LOG_LEVEL", "WARNING")
    import weightslab as wl

    ds = _data()
    plain_model, plain_loss = _model(), torch.nn.CrossEntropyLoss(reduction="none")
    plain_opt = torch.optim.SGD(plain_model.parameters(), lr=0.01)
    plain_loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True)

    model = wl.watch_or_edit(_model(), flag="model")
    opt = wl.watch_or_edit(torch.optim.SGD(model.parameters(), lr=0.01), flag="optimizer")
    loader = wl.watch_or_edit(ds, flag="data", loader_name="train", batch_size=batch_size, shuffle=True)
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="loss")

    def plain_epoch() -> list[float]:
        times = []
        t0 = time.perf_counter()
        for x, y in plain_loader:
            plain_opt.zero_grad()
            plain_loss(plain_model(x), y).mean().backward()
            plain_opt.step()
            t1 = time.perf_counter()
            times.append(t1 - t0)
            t0 = t1
        return times

    def wl_epoch() -> list[float]:
        times = []
        t0 = time.perf_counter()
        for x, ids, y in loader:
            with wl.guard_training_context:
                opt.zero_grad()
                loss_fn(model(x), y, batch_ids=ids).mean().backward()
                opt.step()
            t1 = time.perf_counter()
            times.append(t1 - t0)
            t0 = t1
        return times

    plain_epoch(), wl_epoch()  # warm-up
    plain: list[float] = []
    inst: list[float] = []
    for _ in range(epochs):
        plain += plain_epoch()
        inst += wl_epoch()
    p, i = statistics.median(plain), statistics.median(inst)
    return {"batch_size": batch_size, "steps_each": len(plain), "plain_median_step_ms": round(p * 1e3, 3),
            "weightslab_median_step_ms": round(i * 1e3, 3), "ratio": round(i / p, 4), "target_ratio": 1.05,
            "store": type(wl.get_experiment().store).__name__}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
