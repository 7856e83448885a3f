"""A small DDP training job for the distributed tests (run once per rank, or alone for the baseline).

    python dist_job.py OUT_DIR --world 2 --rank R --port P [--scenario plain|control|restore|kill0|kill1|serve]
    python dist_job.py OUT_DIR --world 1                          # the single-process baseline

Rank 0 writes ``result.json`` (per-sample losses, curve, status) in OUT_DIR; every rank writes
``rank<R>.json`` (per step: lr, batch ids, start time). Tests start it with :func:`launch`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

PER_RANK_BATCH = 8
N_SAMPLES = 192
SEED = 3
RELABELLED_IDS = range(2, 12)  # the control scenario relabels these samples (digits 2..9, 0, 1) ...
RELABELLED = 7  # ... to this class


def launch(out: Path, *, world: int, scenario: str = "plain", timeout: float,
           env: dict[str, str] | None = None) -> list[subprocess.CompletedProcess[str]]:
    """Run this job on ``world`` real processes (gloo over 127.0.0.1, a free port); wait for all."""
    out.mkdir(parents=True, exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("WEIGHTSLAB_", "WL_", "GRPC_", "CLI_"))}
    environ.update(WEIGHTSLAB_ROOT_LOG_DIR=str(out / "root"), WL_ENABLE_HP_SYNC="0", OMP_NUM_THREADS="1",
                   WL_TEST_TIMEOUT=str(timeout), **(env or {}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    procs = [subprocess.Popen([sys.executable, __file__, str(out), "--world", str(world), "--rank", str(rank),
                               "--port", str(port), "--scenario", scenario], env=environ,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in range(world)]
    done = []
    try:
        for proc in procs:
            stdout, _ = proc.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, ""))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return done


def load(out: Path, name: str) -> dict:
    return json.loads((out / name).read_text())


def stored_losses(root: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Open the store of ``root`` in a new process; print its sample count and train_loss count."""
    return subprocess.run([sys.executable, "-c", (
        "import sys, weightslab as wl\n"
        "exp = wl.get_experiment(root_log_dir=sys.argv[1]); exp.start()\n"
        "frame = wl.dataframe()\n"
        "losses = frame['train_loss'].notna().sum() if 'train_loss' in frame else 0\n"
        "print(len(frame), int(losses))\n"), str(root)],
        env={k: v for k, v in os.environ.items() if not k.startswith(("WEIGHTSLAB_", "WL_"))},
        capture_output=True, text=True, timeout=timeout)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor((digits.images[:N_SAMPLES] / 16.0).reshape(N_SAMPLES, -1), dtype=torch.float32)
    return x, torch.tensor(digits.target[:N_SAMPLES], dtype=torch.int64)


def _listening_inodes() -> set[str]:
    """Inodes of this process's listening TCP sockets (Linux /proc)."""
    mine = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[8:-1])
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in mine:  # 0A = LISTEN
                listening.add(parts[9])
    return listening


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--world", type=int, default=1)
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--scenario", default="plain")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    distributed = args.world > 1
    if distributed:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=args.rank,
                                world_size=args.world, timeout=timedelta(seconds=60))
    import weightslab as wl

    os.environ.setdefault("WEIGHTSLAB_ROOT_LOG_DIR", str(args.out / "root"))
    wl.get_experiment()  # its process group (gloo) opens this rank's peer sockets
    before = _listening_inodes()
    if args.scenario == "serve":
        services = wl.serve(serving_grpc=False, serving_cli=False)
        assert args.rank == 0 or services == {}
    x, y = _data()
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    model = wl.watch_or_edit(net, flag="model")
    params = wl.watch_or_edit({"lr": 0.1, "comment": ""}, flag="hp")
    ddp = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    opt = wl.watch_or_edit(torch.optim.SGD(model.parameters(), lr=params["lr"]), flag="optimizer")
    batch = PER_RANK_BATCH * (1 if distributed else 2)
    loader = wl.watch_or_edit(torch.utils.data.TensorDataset(x, y), flag="data", loader_name="train",
                              batch_size=batch, shuffle=True, seed=SEED, preload_labels=True)
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="train_loss")
    if args.scenario == "restore":  # an evaluation split, evaluated by rank 0 alone
        wl.watch_or_edit(torch.utils.data.TensorDataset(x[:64], y[:64]), flag="data", loader_name="val",
                         batch_size=32, is_training=False)
    exp = wl.get_experiment()
    steps: list[dict] = []
    control_log: dict = {}
    drive = {"control": _drive, "restore": _drive_restore}.get(args.scenario)
    if drive is not None and args.rank == 0:
        threading.Thread(target=drive, args=(exp, control_log), daemon=True).start()
    failure = None
    try:
        for epoch in range(args.epochs):
            loader.set_epoch(epoch)  # as DistributedSampler scripts do
            for inputs, ids, targets in loader:
                entry = {"step": exp.step, "t": time.time(), "ids": [int(i) for i in ids],
                         "targets": [int(t) for t in targets]}
                steps.append(entry)
                if args.scenario == f"kill{args.rank}" and exp.step == 7:
                    if args.rank == 0:  # what the store committed must survive the kill
                        exp.recorder.drain()
                        exp.store.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
                with wl.guard_training_context:
                    entry["lr"] = opt.param_groups[0]["lr"]  # after the step boundary: the lr this step uses
                    entry["params"] = _checksum(model)
                    opt.zero_grad()
                    loss_fn(ddp(inputs), targets, batch_ids=ids).mean().backward()
                    opt.step()
    except Exception as exc:  # the kill scenario: rank 0 reports the dead rank
        failure = f"{type(exc).__name__}: {exc}"
    (args.out / f"rank{args.rank}.json").write_text(json.dumps(
        {"steps": steps, "final_step": exp.step, "final_params": _checksum(model),
         "comment": exp.hp.get("comment") if exp.hp is not None else None, "services": sorted(exp.services),
         "new_listening": sorted(_listening_inodes() - before), "failure": failure}))
    if args.rank == 0:
        frame = wl.dataframe()
        columns = ["train_loss", "suspected_mislabel", "seen_count"]
        rows = {str(r["sample_id"]): {c: float(r[c]) for c in columns} for _, r in frame.iterrows()}
        curve = exp.history.curve("train_loss", split="train")
        (args.out / "result.json").write_text(json.dumps(
            {"rows": rows, "curve": [[p.step, p.value] for p in curve],
             "discarded": sorted(str(s) for s in frame.loc[frame["discarded"], "sample_id"]),
             "control": control_log, "failure": failure}))
    wl.get_experiment().shutdown()
    if distributed and failure is None:
        dist.destroy_process_group()
    return 3 if failure else 0


def _checksum(model: torch.nn.Module) -> float:
    return float(sum(p.detach().double().abs().sum() for p in model.parameters()))


def _drive_restore(exp, log: dict) -> None:
    """Rank 0: save a checkpoint at step 3; at step 8 evaluate, then restore it."""
    deadline = time.monotonic() + 60

    def pause_at(step: int) -> None:
        while exp.step < step and time.monotonic() < deadline:
            time.sleep(0.005)
        exp.control.pause()
        exp.control.wait_until(lambda c: c.waiting, 30)

    pause_at(3)
    saved = exp.checkpoints.save()
    log.update(saved_step=exp.step, saved_params=_checksum(exp.models["model"]), saved_id=saved["id"])
    exp.control.resume()
    pause_at(8)
    log["eval_started"] = time.time()
    log["eval"] = exp.evaluation.evaluate("val", timeout=30)["state"]
    log["eval_ended"] = time.time()
    log["restored"] = exp.checkpoints.restore(checkpoint_id=saved["id"])["branch"]
    log["restored_at"] = exp.step
    exp.control.resume()


def _drive(exp, log: dict) -> None:
    """Rank 0, mid-epoch: pause; discard two samples, relabel ten, change lr; run 3 steps; resume."""
    import weightslab as wl

    deadline = time.monotonic() + 60
    while exp.step < 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    wl.pause()
    exp.control.wait_until(lambda c: c.waiting, 30)
    log["paused_step"] = exp.step
    log["paused_at"] = time.time()
    # edits while paused apply on every rank from the next step on
    wl.discard_samples(["0", "1"])
    exp.set_hyperparameter("lr", 0.01)
    exp.set_hyperparameter("comment", "c" * 3000)  # a decision longer than one broadcast buffer
    wl.relabel([str(i) for i in RELABELLED_IDS], label=RELABELLED, split="train")
    time.sleep(0.3)  # the pause itself: no rank may take a step meanwhile
    log["resumed_at"] = time.time()
    wl.resume(steps=3)
    exp.control.wait_until(lambda c: c.waiting and exp.step >= log["paused_step"] + 3, 30)
    log["run_n_stopped_at"] = exp.step
    wl.resume()


if __name__ == "__main__":
    sys.exit(main())
