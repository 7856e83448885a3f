"""Scale: a million samples with cheap steps (issue 19) -- plain vs instrumented, same run.

A tabular user's loop: a 2-layer MLP on synthetic data (32 features, 10 classes), batch
1024, CPU, one thread; a watched loader, model, optimizer and per-sample loss; the CLI server
on (queries go through the real server, over a socket). For 10k / 100k / 1M samples, each in
a fresh process (one experiment per process, clean RSS):

* ``epoch_ratio`` / ``step_ratio``: instrumented / plain epoch time and median step time
  (targets: step ratio <= 1.10 at 1M). Plain epochs run before and after the instrumented
  one; the baseline is their mean. The plain loop uses ``torch.utils.data.DataLoader``, which
  fetches a ``TensorDataset`` item by item; the watched loader gathers a batch at a time, so
  ``step_ratio_vs_batched`` (against a plain loop that gathers the same way) and
  ``recording_ms_per_step`` isolate what recording costs. ``drain_after_epoch_s``: what the recorder still had
  queued when the loop ended (folded in before the queries).
* ``peak_rss_plain_mb`` -> ``peak_rss_instrumented_mb`` and ``bytes_per_sample``: the peak
  RSS growth over the plain loop, per sample, with one per-sample signal over one epoch
  (target <= 250). ``bytes_per_sample_per_extra_epoch`` / ``..._per_extra_signal``: how the
  resident set grows with a second epoch of history, and with a second per-sample signal.
* ``first_query_ms`` / ``repeat_query_ms``: a CLI ``query`` right after the table changed
  (after the epoch; after one more step) and the same query again (targets at 1M: <= 50 ms
  and <= 5 ms); ``tag_by_query_ms``: ``tag <name> --query ...`` through the CLI.
* ``first10_vs_median``: the mean of the first 10 instrumented steps / the median step
  (target <= 1.20).

Beside it, the 5 ms-step tiny CNN of ``core_bench`` (target ratio <= 1.02).

Sizes: ``WL_SCALE_BENCH_SIZES`` (comma-separated, default ``10000,100000,1000000``); the 1M
case takes about a minute on a 2-core machine, so it runs by default in ``nox -s bench``.
``python benchmarks/scale_bench.py 100000`` runs one size in this process and prints JSON.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FEATURES = 32
CLASSES = 10
BATCH = 1024
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUERY = "query loss > 1 sort by loss desc limit 20"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Cli:
    """A minimal line-protocol client of the CLI server (one JSON request/reply per line)."""

    def __init__(self, port: int) -> None:
        import socket

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.reader = self.sock.makefile("rb")
        self.reader.readline()  # greeting

    def cmd(self, command: str) -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        self.sock.sendall((json.dumps({"command": command}) + "\n").encode())
        reply = json.loads(self.reader.readline())
        elapsed = (time.perf_counter() - t0) * 1000
        if reply.get("ok") is False:
            raise RuntimeError(f"CLI {command!r} failed: {reply}")
        return elapsed, reply

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def run_one(n: int) -> dict[str, Any]:
    root = tempfile.mkdtemp(prefix="wl-scale-bench-")
    (Path(root) / "empty.env").write_text("")  # never the developer's .env
    os.environ.update({"WEIGHTSLAB_ROOT_LOG_DIR": root, "WEIGHTSLAB_LOG_LEVEL": "WARNING",
                       "CLI_HOST": "127.0.0.1", "CLI_PORT": "0", "GRPC_TLS_ENABLED": "0",
                       "WEIGHTSLAB_DISABLE_WATCHDOGS": "1", "WEIGHTSLAB_ENV_FILE": str(Path(root) / "empty.env")})
    import torch

    torch.set_num_threads(1)
    import weightslab as wl
    from weightslab.heap import release_free_heap

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, FEATURES, generator=g)
    y = torch.randint(0, CLASSES, (n,), generator=g)
    ds = torch.utils.data.TensorDataset(x, y)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(FEATURES, 64), torch.nn.ReLU(), torch.nn.Linear(64, CLASSES))

    def timed_epoch(batches: Any) -> list[float]:
        """Step times of a plain (uninstrumented) loop over ``batches``."""
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
        times = []
        t0 = time.perf_counter()
        for xb, yb in batches:
            opt.zero_grad()
            loss_fn(net(xb), yb).mean().backward()
            opt.step()
            t1 = time.perf_counter()
            times.append(t1 - t0)
            t0 = t1
        return times

    def plain_epoch() -> list[float]:
        return timed_epoch(torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True))

    def gathered(order: Any) -> Any:
        for start in range(0, n, BATCH):
            idx = order[start:start + BATCH]
            yield x.index_select(0, idx), y.index_select(0, idx)

    def plain_batched_epoch() -> list[float]:
        """The plain loop with the fetch the watched loader does for a TensorDataset (one gather a
        batch instead of the DataLoader's item-by-item collate): the baseline for the recording cost."""
        return timed_epoch(gathered(torch.randperm(n)))

    plain1 = plain_epoch()
    batched1 = plain_batched_epoch()
    gc.collect()
    peak_plain = _peak_rss_mb()
    rss_plain = _rss_mb()

    # Instrumented: watched objects, CLI server on (what a user adds to the same loop).
    t_setup = time.perf_counter()
    model = wl.watch_or_edit(net, flag="model")
    opt = wl.watch_or_edit(torch.optim.SGD(model.parameters(), lr=0.01), flag="optimizer")
    loader = wl.watch_or_edit(ds, flag="data", loader_name="train", batch_size=BATCH, shuffle=True)
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="loss")
    services = wl.serve(serving_cli=True)
    setup_s = time.perf_counter() - t_setup
    exp = wl.get_experiment()
    cli = _Cli(services["cli"].port)

    def conf_fn(logits: Any, _targets: Any) -> Any:
        return logits.detach().softmax(1).max(1).values

    extra_signal: list[Any] = []

    def wl_epoch(steps: int | None = None) -> list[float]:
        times = []
        t0 = time.perf_counter()
        for i, (xb, ids, yb) in enumerate(loader):
            with wl.guard_training_context:
                opt.zero_grad()
                logits = model(xb)
                loss_fn(logits, yb, batch_ids=ids).mean().backward()
                for sig in extra_signal:
                    sig(logits, yb, batch_ids=ids)
                opt.step()
            t1 = time.perf_counter()
            times.append(t1 - t0)
            t0 = t1
            if steps is not None and i + 1 >= steps:
                break
        return times

    def drain() -> float:
        t0 = time.perf_counter()
        exp.recorder.drain()
        return time.perf_counter() - t0

    def settled_rss() -> float:
        """Resident set once the store has written and merged what it had (a background merge in
        flight would otherwise land in whichever reading it overlaps)."""
        exp.store.flush()
        compact = getattr(exp.store, "compact", None)
        if compact is not None:
            compact()
        gc.collect()
        release_free_heap()  # what is held, not free heap pages that a merge or a query happened to leave
        return _rss_mb()

    inst = wl_epoch()
    drain_s = drain()
    gc.collect()
    peak_inst = _peak_rss_mb()
    rss_one_epoch = settled_rss()
    plain2 = plain_epoch()
    batched2 = plain_batched_epoch()

    # Queries through the CLI server: first after the table changed, then the same again.
    first_ms, reply = cli.cmd(QUERY)
    repeat_ms = statistics.median(cli.cmd(QUERY)[0] for _ in range(5))
    tag_ms, tagged = cli.cmd("tag hard --query loss > 2")
    after_tag_ms = cli.cmd(QUERY)[0]
    wl_epoch(steps=1)
    drain()
    after_step_ms = cli.cmd(QUERY)[0]
    after_step_repeat_ms = statistics.median(cli.cmd(QUERY)[0] for _ in range(5))

    # Growth: a second epoch of history (one signal), then a third with a second signal.
    rss0 = settled_rss()
    wl_epoch()
    drain()
    rss1 = settled_rss()
    extra_signal.append(wl.watch_or_edit(conf_fn, flag="signal", name="confidence"))
    wl_epoch()
    drain()
    rss2 = settled_rss()
    cli.close()

    p_epoch = (sum(plain1) + sum(plain2)) / 2
    p_step = statistics.median(plain1 + plain2)
    i_step = statistics.median(inst[10:] or inst)
    b_step = statistics.median(batched1 + batched2)
    per_epoch = (rss1 - rss0) * 2**20 / n
    mb = 2**20
    return {
        "samples": n, "batch_size": BATCH, "steps": len(inst), "store": type(exp.store).__name__,
        "plain_epoch_s": round(p_epoch, 3), "instrumented_epoch_s": round(sum(inst), 3),
        "epoch_ratio": round(sum(inst) / p_epoch, 3),
        "plain_median_step_ms": round(p_step * 1e3, 3), "instrumented_median_step_ms": round(i_step * 1e3, 3),
        "step_ratio": round(i_step / p_step, 3),
        "plain_batched_median_step_ms": round(b_step * 1e3, 3),
        "step_ratio_vs_batched": round(i_step / b_step, 3),
        "recording_ms_per_step": round((i_step - b_step) * 1e3, 3),
        "drain_after_epoch_s": round(drain_s, 3), "setup_s": round(setup_s, 3),
        "first10_step_ms": round(statistics.mean(inst[:10]) * 1e3, 3),
        "first10_vs_median": round(statistics.mean(inst[:10]) / i_step, 3),
        "plain_first10_vs_median": round(statistics.mean(plain1[:10]) / statistics.median(plain1), 3),
        "peak_rss_plain_mb": round(peak_plain, 1), "peak_rss_instrumented_mb": round(peak_inst, 1),
        "bytes_per_sample": round((peak_inst - peak_plain) * mb / n, 1),
        "rss_bytes_per_sample_one_epoch": round((rss_one_epoch - rss_plain) * mb / n, 1),
        "bytes_per_sample_per_extra_epoch": round(per_epoch, 1),
        "bytes_per_sample_per_extra_signal": round((rss2 - rss1) * mb / n - per_epoch, 1),
        "first_query_ms": round(first_ms, 2), "repeat_query_ms": round(repeat_ms, 2),
        "query_total": reply.get("total"),
        "tag_by_query_ms": round(tag_ms, 2), "tagged": tagged.get("matched"),
        "first_query_after_tag_ms": round(after_tag_ms, 2),
        "first_query_after_step_ms": round(after_step_ms, 2),
        "repeat_query_after_step_ms": round(after_step_repeat_ms, 2),
        "recorder_errors": exp.recorder.errors,
    }


def run() -> dict[str, Any]:
    sizes = os.environ.get("WL_SCALE_BENCH_SIZES")
    ns = [int(s) for s in sizes.split(",")] if sizes else list(DEFAULT_SIZES)
    results: dict[str, Any] = {}
    for n in ns:
        out = subprocess.run([sys.executable, __file__, str(n)], capture_output=True, text=True)
        lines = out.stdout.strip().splitlines()
        if not lines or not lines[-1].startswith("{"):
            raise RuntimeError(f"{n} samples: exit {out.returncode}\n{out.stderr[-3000:]}")
        results[str(n)] = json.loads(lines[-1])  # logging may print before it
        if out.returncode:  # measured, then failed on the way out: keep the figures, say so
            results[str(n)]["exit_code"] = out.returncode
    core = Path(__file__).with_name("core_bench.py")
    out = subprocess.run([sys.executable, str(core), "tiny"], capture_output=True, text=True, check=True)
    tiny = json.loads(out.stdout)
    largest = results[str(max(ns))]
    results["tiny_cnn"] = tiny
    results["targets"] = {"step_ratio_1M": 1.10, "tiny_cnn_ratio": 1.02, "bytes_per_sample": 250,
                          "first_query_ms_1M": 50, "repeat_query_ms_1M": 5, "first10_vs_median": 1.20}
    results["summary"] = {"samples": largest["samples"], "step_ratio": largest["step_ratio"],
                          "step_ratio_vs_batched": largest["step_ratio_vs_batched"],
                          "recording_ms_per_step": largest["recording_ms_per_step"],
                          "epoch_ratio": largest["epoch_ratio"], "bytes_per_sample": largest["bytes_per_sample"],
                          "first_query_ms": largest["first_query_ms"], "repeat_query_ms": largest["repeat_query_ms"],
                          "first10_vs_median": largest["first10_vs_median"], "tiny_cnn_ratio": tiny["ratio"]}
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(json.dumps(run_one(int(sys.argv[1]))))  # one line, last: what run() reads
    else:
        print(json.dumps(run(), indent=2))
