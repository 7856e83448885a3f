"""Distributed overhead: 2 ranks (gloo, CPU, 127.0.0.1), DDP on a small MLP, plain vs WeightsLab.

Per configuration both ranks run the same loop; each reports its median step time over the
timed steps (after warm-up). Configurations: plain DDP (baseline), then WeightsLab with
``WL_DISTRIBUTED_SYNC_EVERY`` = 1, 10 and 50 (how often rank 0 gathers the records). Reports the
step-time ratio of each against the plain baseline of the same run.

    python benchmarks/distributed_bench.py            # prints the JSON result
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = 240
WARMUP = 20
BATCH = 256
FEATURES = 64


def _worker(out: Path, rank: int, port: int, instrumented: bool) -> None:
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    torch.manual_seed(0)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=120))
    n = STEPS * BATCH * 2
    x = torch.randn(n, FEATURES)
    y = torch.randint(0, 10, (n,))
    net = torch.nn.Sequential(torch.nn.Linear(FEATURES, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    loss_fn: object = torch.nn.CrossEntropyLoss(reduction="none")
    if instrumented:
        import weightslab as wl

        net = wl.watch_or_edit(net, flag="model")
        model = torch.nn.parallel.DistributedDataParallel(net)
        opt = wl.watch_or_edit(torch.optim.SGD(net.parameters(), lr=0.01), flag="optimizer")
        loader = wl.watch_or_edit(torch.utils.data.TensorDataset(x, y), flag="data", loader_name="train",
                                  batch_size=BATCH, shuffle=True, seed=0)
        loss_fn = wl.watch_or_edit(loss_fn, flag="loss", name="train_loss")
    else:
        model = torch.nn.parallel.DistributedDataParallel(net)
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        sampler = torch.utils.data.DistributedSampler(torch.utils.data.TensorDataset(x, y), seed=0)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH,
                                             sampler=sampler)
    times = []
    last = time.perf_counter()
    for batch in loader:
        inputs, targets = batch[0], batch[-1]
        opt.zero_grad()
        logits = model(inputs)
        if instrumented:
            losses = loss_fn(logits, targets, batch_ids=batch[1])  # type: ignore[operator]
        else:
            losses = loss_fn(logits, targets)  # type: ignore[operator]
        losses.mean().backward()
        opt.step()
        now = time.perf_counter()
        times.append(now - last)
        last = now
    timed = times[WARMUP:]
    (out / f"rank{rank}.json").write_text(json.dumps({"median_ms": statistics.median(timed) * 1000,
                                                      "steps": len(times)}))
    if instrumented:
        import weightslab as wl

        wl.get_experiment().shutdown()
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch(out: Path, instrumented: bool, sync_every: int | None) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WEIGHTSLAB_ROOT_LOG_DIR": str(out / "root"),
           "WEIGHTSLAB_LOG_LEVEL": "WARNING", "WL_ENABLE_HP_SYNC": "0"}
    if sync_every is not None:
        env["WL_DISTRIBUTED_SYNC_EVERY"] = str(sync_every)
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(out), str(rank), str(port),
                               "1" if instrumented else "0"], env=env) for rank in range(2)]
    for proc in procs:
        if proc.wait(timeout=600) != 0:
            raise RuntimeError(f"rank worker exited with {proc.returncode}")
    medians = [json.loads((out / f"rank{r}.json").read_text())["median_ms"] for r in range(2)]
    return {"median_step_ms": round(max(medians), 3)}


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="wl-dist-bench-") as tmp:
        root = Path(tmp)
        plain = _launch(root / "plain", False, None)
        result: dict[str, object] = {"ranks": 2, "backend": "gloo", "batch_per_rank": BATCH,
                                     "plain_median_step_ms": plain["median_step_ms"]}
        for every in (1, 10, 50):
            measured = _launch(root / f"wl{every}", True, every)
            result[f"sync_every_{every}_median_step_ms"] = measured["median_step_ms"]
            result[f"sync_every_{every}_ratio"] = round(measured["median_step_ms"] / plain["median_step_ms"], 3)
        return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1")
    else:
        print(json.dumps(run(), indent=2))
