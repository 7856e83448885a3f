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


def _data(n: int = 4096, side: int = 16) -> Any:
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, side, side, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return torch.utils.data.TensorDataset(x, y)


def _model(kind: str = "lenet") -> Any:
    """``lenet``: a LeNet-style CNN on 28x28 inputs (MNIST-sized, the reference case);
    ``tiny``: a 2-conv CNN on 16x16 inputs, where a step is only a few ms, so any per-step
    overhead shows up magnified."""
    import torch

    torch.manual_seed(0)
    if kind == "tiny":
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(32 * 16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 7 * 7, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))


SIDES = {"lenet": 28, "tiny": 16}


def run() -> dict[str, Any]:
    """Both reference models, each in a fresh process (one experiment per process)."""
    import json
    import subprocess
    import sys

    results = {}
    for kind in SIDES:
        out = subprocess.run([sys.executable, __file__, kind], capture_output=True, text=True, check=True)
        results[kind] = json.loads(out.stdout)
    results["target_ratio"] = 1.05
    results["ratio"] = results["lenet"]["ratio"]
    return results


def run_one(kind: str = "lenet", blocks: int = 40, block_steps: int = 16, batch_size: int = 64) -> dict[str, Any]:
    """Alternate short blocks of plain and instrumented steps on the same model and data, so
    both see the same machine state; report the median of per-block median step times."""
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("WEIGHTSLAB_ROOT_LOG_DIR", tempfile.mkdtemp(prefix="wl-bench-"))
    os.environ.setdefault("WEIGHTSLAB_LOG_LEVEL", "WARNING")
    import weightslab as wl

    ds = _data(side=SIDES[kind])
    model = wl.watch_or_edit(_model(kind), flag="model")
    plain_opt = torch.optim.SGD(model.parameters(), lr=0.01)
    plain_loss = torch.nn.CrossEntropyLoss(reduction="none")
    plain_loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True)
    opt = wl.watch_or_edit(torch.optim.SGD(model.parameters(), lr=0.01), flag="optimizer")
    loader = wl.watch_or_edit(ds, flag="data", loader_name="train", batch_size=batch_size, shuffle=True)
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="loss")

    def endless(iterable: Any) -> Any:
        while True:
            yield from iterable

    plain_batches, wl_batches = endless(plain_loader), endless(loader)

    def plain_block() -> float:
        times = []
        for _ in range(block_steps):
            t0 = time.perf_counter()
            x, y = next(plain_batches)
            plain_opt.zero_grad()
            plain_loss(model(x), y).mean().backward()
            plain_opt.step()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    def wl_block() -> float:
        times = []
        for _ in range(block_steps):
            t0 = time.perf_counter()
            x, ids, y = next(wl_batches)
            with wl.guard_training_context:
                opt.zero_grad()
                loss_fn(model(x), y, batch_ids=ids).mean().backward()
                opt.step()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    for _ in range(3):  # warm-up
        plain_block(), wl_block()
    plain: list[float] = []
    inst: list[float] = []
    for _ in range(blocks):
        plain.append(plain_block())
        inst.append(wl_block())
    p, i = statistics.median(plain), statistics.median(inst)
    ratios = sorted(b / a for a, b in zip(plain, inst, strict=True))
    return {"batch_size": batch_size, "steps_each": blocks * block_steps,
            "plain_median_step_ms": round(p * 1e3, 3), "weightslab_median_step_ms": round(i * 1e3, 3),
            "ratio": round(i / p, 4), "block_ratio_p25_p50_p75": [round(ratios[len(ratios) * q // 4], 4)
                                                                  for q in (1, 2, 3)],
            "model": kind, "store": type(wl.get_experiment().store).__name__,
            "recorded_values": int(wl.get_experiment().history.arrays("loss")[0].size)}


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run_one(sys.argv[1]) if len(sys.argv) > 1 else run(), indent=2))
