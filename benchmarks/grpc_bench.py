"""gRPC backend benchmarks (server in this process, real TLS + mTLS + token on loopback).

1. ``status``: unary GetStatus from 8 concurrent client threads (in a separate client process,
   as Studio/Envoy would be): requests/s, p50, p99. Target >= 2000 req/s. The same client
   against a bare grpc server (same TLS, constant reply) is measured first: on a shared
   machine ``ratio_to_baseline`` is the stable number.
2. ``control``: p99 latency of Pause / Resume / GetStatus while a torch training loop runs in
   this (the server's) process. Target p99 < 50 ms.
3. ``query_page``: QuerySamples, a page of 128 rows x 10 columns sorted by a column of a
   1M-row table: server-side handler time (warm: the frame snapshot and the query's order are
   cached per table version, as when paging), the time of a new query on an unchanged table
   (``*_new_query_*``: filter + partial sort), the first call after a table change
   (``cold_first_call_ms``: + the snapshot) and the client round trip. Target < 20 ms.

``run() -> dict``; ``python benchmarks/grpc_bench.py`` prints the JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TARGETS = {"status_rps": 2000.0, "control_p99_ms": 50.0, "query_page_ms": 20.0}
DISABLED = "cli,studio,agent,data_cache"


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# -- client side (runs in a subprocess for the throughput phase) ---------------------------


def _client_main(args: dict[str, Any]) -> dict[str, Any]:
    from weightslab_auth.client import secure_channel
    from weightslab_grpc_server._generated import experiment_pb2 as pb
    from weightslab_grpc_server._generated import experiment_pb2_grpc as pb_grpc

    threads, duration = int(args["threads"]), float(args["duration"])
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    start = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def work(i: int) -> None:
        channel = secure_channel(args["target"], ca=args["ca"], cert=args["cert"], key=args["key"],
                                 token=args["token"])
        stub = pb_grpc.ExperimentServiceStub(channel)
        request = pb.GetStatusRequest()
        for _ in range(20):  # warm-up: TLS handshake, connection
            stub.GetStatus(request, timeout=10)
        start.wait()
        mine = latencies[i]
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at[0]:
                break
            try:
                stub.GetStatus(request, timeout=10)
            except Exception:
                errors[i] += 1
            mine.append(time.perf_counter() - t0)
        channel.close()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    stop_at[0] = time.perf_counter() + 3600
    start.wait()
    began = time.perf_counter()
    stop_at[0] = began + duration
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    flat = [x * 1000 for lat in latencies for x in lat]
    return {"threads": threads, "requests": len(flat), "errors": sum(errors), "seconds": round(elapsed, 3),
            "rps": round(len(flat) / elapsed, 1), "p50_ms": round(_pct(flat, 0.5), 3),
            "p99_ms": round(_pct(flat, 0.99), 3)}


# -- server side ------------------------------------------------------------------------


class _Server:
    def __init__(self, root: Path, n_rows: int = 1000) -> None:
        import numpy as np
        from weightslab.experiment import Experiment
        from weightslab.plugins import create_plugin_manager
        from weightslab_auth.pki import create_dev_pki, load_token

        self.pki = create_dev_pki(root / "pki")
        self.token = load_token(root / "pki")
        environ = {"GRPC_TLS_CERT_DIR": str(self.pki.directory), "GRPC_AUTH_TOKEN": self.token,
                   "WL_ENABLE_HP_SYNC": "0", "WEIGHTSLAB_LOG_LEVEL": "WARNING",
                   "WEIGHTSLAB_DISABLED_PLUGINS": DISABLED, "GRPC_WATCHDOG_STUCK_SECONDS": "10"}
        pm = create_plugin_manager(environ=environ)
        self.experiment = Experiment(kwargs={"root_log_dir": root / "exp", "grpc_host": "127.0.0.1",
                                             "grpc_port": 0}, environ=environ, pm=pm, name="bench")
        self.experiment.start()
        ids = [str(i) for i in range(n_rows)]
        self.experiment.register_samples("train", ids, np.arange(n_rows) % 10)
        self.experiment.serve_options["grpc"] = True
        from weightslab_grpc_server.plugin import weightslab_serve

        self.handle = weightslab_serve(self.experiment, self.experiment.config)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.handle.port}"

    def client_args(self, **extra: Any) -> dict[str, Any]:
        return {"target": self.target, "ca": str(self.pki.ca_cert), "cert": str(self.pki.envoy_client_cert),
                "key": str(self.pki.envoy_client_key), "token": self.token, **extra}

    def stub(self) -> Any:
        from weightslab_auth.client import secure_channel
        from weightslab_grpc_server._generated import experiment_pb2_grpc as pb_grpc

        a = self.client_args()
        return pb_grpc.ExperimentServiceStub(secure_channel(a["target"], ca=a["ca"], cert=a["cert"], key=a["key"],
                                                            token=a["token"]))

    def close(self) -> None:
        self.handle.stop(grace=0)
        self.experiment.shutdown()


def _run_client(args: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--client", json.dumps(args)], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "GRPC_VERBOSITY": "ERROR"})
    if out.returncode != 0:
        raise RuntimeError(f"client failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _trivial_server(server: _Server) -> tuple[Any, int]:
    """Baseline: a bare grpc server (same TLS/mTLS, no interceptors) answering GetStatus
    with a constant — what this machine can do at all right now."""
    from concurrent import futures

    import grpc
    from weightslab_grpc_server._generated import experiment_pb2 as pb

    pki = server.pki
    creds = grpc.ssl_server_credentials([(pki.backend_key.read_bytes(), pki.backend_cert.read_bytes())],
                                        root_certificates=pki.ca_cert.read_bytes(), require_client_auth=True)
    reply = pb.GetStatusResponse(name="baseline")
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: reply,
                                                  request_deserializer=pb.GetStatusRequest.FromString,
                                                  response_serializer=pb.GetStatusResponse.SerializeToString)
    bare = grpc.server(futures.ThreadPoolExecutor(16), handlers=[
        grpc.method_handlers_generic_handler("weightslab.v1.ExperimentService", {"GetStatus": handler})])
    port = bare.add_secure_port("127.0.0.1:0", creds)
    bare.start()
    return bare, port


def bench_status(root: Path, threads: int = 8, duration: float = 4.0) -> dict[str, Any]:
    server = _Server(root / "status")
    try:
        bare, port = _trivial_server(server)
        try:
            baseline = _run_client({**server.client_args(threads=threads, duration=duration),
                                    "target": f"127.0.0.1:{port}"})
        finally:
            bare.stop(None)
        result = _run_client(server.client_args(threads=threads, duration=duration))
        result["baseline_bare_grpc_rps"] = baseline["rps"]
        result["ratio_to_baseline"] = round(result["rps"] / baseline["rps"], 3) if baseline["rps"] else None
        result["target_rps"] = TARGETS["status_rps"]
        result["ok"] = result["rps"] >= TARGETS["status_rps"] and result["errors"] == 0
        return result
    finally:
        server.close()


def bench_control(root: Path, rounds: int = 150) -> dict[str, Any]:
    import numpy as np
    import torch
    from weightslab.data import WatchedLoader
    from weightslab_grpc_server._generated import experiment_pb2 as pb

    torch.set_num_threads(1)
    server = _Server(root / "control", n_rows=10)
    exp = server.experiment
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4096, 1, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, 4096)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(16 * 8 * 8, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    exp.models["model"], exp.optimizers["opt"] = model, opt
    loader = WatchedLoader(exp, (x, y), loader_name="train", batch_size=64, shuffle=True, seed=0)
    exp.loaders["train"] = loader
    stop = threading.Event()
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none")

    def train() -> None:
        while not stop.is_set():
            for xb, ids, yb in loader:
                if stop.is_set():
                    return
                logits = model(torch.from_numpy(xb))
                losses = loss_fn(logits, torch.from_numpy(yb))
                exp.record("loss", losses.detach(), ids, split="train", logits=logits.detach(),
                           targets=torch.from_numpy(yb), is_loss=True)
                opt.zero_grad()
                losses.mean().backward()
                opt.step()
                exp.step_end()

    trainer = threading.Thread(target=train, daemon=True)
    trainer.start()
    stub = server.stub()
    stub.GetStatus(pb.GetStatusRequest(), timeout=10)
    timings: dict[str, list[float]] = {"Pause": [], "Resume": [], "GetStatus": []}
    try:
        time.sleep(0.5)
        for _ in range(rounds):
            for name, request in (("GetStatus", pb.GetStatusRequest()), ("Pause", pb.PauseRequest()),
                                  ("GetStatus", pb.GetStatusRequest()), ("Resume", pb.ResumeRequest())):
                t0 = time.perf_counter()
                getattr(stub, name)(request, timeout=10)
                timings[name].append((time.perf_counter() - t0) * 1000)
            time.sleep(0.005)
        steps = exp.step
    finally:
        stop.set()
        exp.control.resume()
        trainer.join(10)
        server.close()
    result: dict[str, Any] = {name: {"p50_ms": round(_pct(v, 0.5), 3), "p99_ms": round(_pct(v, 0.99), 3),
                                     "calls": len(v)} for name, v in timings.items()}
    worst = max(r["p99_ms"] for r in result.values())
    result.update({"training_steps_during_run": steps, "worst_p99_ms": worst,
                   "target_p99_ms": TARGETS["control_p99_ms"], "ok": worst < TARGETS["control_p99_ms"]})
    return result


class _Context:
    """Just enough of grpc.ServicerContext for a direct handler call (server-side time)."""

    def peer(self) -> str:
        return "bench"

    def abort(self, code: Any, details: str) -> None:
        raise RuntimeError(f"{code}: {details}")


def _clear_order_cache(servicer: Any, experiment: Any) -> None:
    """Forget cached query orders (core operations' cache; the servicer's own before it)."""
    try:
        from weightslab.operations._frames import frame_cache
    except ImportError:
        servicer._order_cache.clear()
    else:
        frame_cache(experiment)._orders.clear()


def bench_curves(root: Path, n_points: int = 200_000, repeats: int = 20) -> dict[str, Any]:
    """GetCurves of 4 signals x 2 splits with ``n_points`` points each: a full downsampled read
    (max_points=1000, extremes kept) and an incremental read (cursor near the end), server side."""
    import numpy as np
    from weightslab_grpc_server._generated import experiment_pb2 as pb

    server = _Server(root / "curves", n_rows=10)
    history = server.experiment.history
    rng = np.random.default_rng(1)
    for signal in ("loss", "acc", "lr", "grad_norm"):
        for split in ("train", "val"):
            for step, value in enumerate(rng.random(n_points).tolist()):
                history.append_curve(signal, split, "b0", step, value)
    servicer, ctx = server.handle.servicer, _Context()
    near_end = max(0, int(history.last_seq) - 500)
    requests = {"full_downsampled": pb.GetCurvesRequest(max_points=1000),
                "incremental": pb.GetCurvesRequest(since_seq=near_end, max_points=1000)}
    try:
        result: dict[str, Any] = {"points_per_series": n_points, "series": 8}
        for name, request in requests.items():
            reply = servicer.GetCurves(request, ctx)
            assert reply.series and all(len(s.points) <= 1000 for s in reply.series)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                servicer.GetCurves(request, ctx)
                times.append((time.perf_counter() - t0) * 1000)
            result[f"{name}_server_median_ms"] = round(statistics.median(times), 2)
        result["ok"] = True
        return result
    finally:
        server.close()


def bench_query_page(root: Path, n_rows: int = 1_000_000, repeats: int = 30) -> dict[str, Any]:
    import numpy as np
    from weightslab_grpc_server._generated import experiment_pb2 as pb

    t0 = time.perf_counter()
    server = _Server(root / "query", n_rows=n_rows)
    exp = server.experiment
    rng = np.random.default_rng(0)
    rows = np.arange(n_rows)
    columns = ["label", "prediction"] + [f"signal_{i}" for i in range(8)]
    with exp.lock:
        exp.table.set_numeric("prediction", rows, rng.integers(0, 10, n_rows).astype(np.float64))
        for name in columns[2:]:
            exp.table.set_signal(name, rows, rng.random(n_rows))
    setup = time.perf_counter() - t0
    servicer = server.handle.servicer
    requests = {
        "sorted_desc": pb.QuerySamplesRequest(query=pb.SampleQuery(text="sort by signal_0 desc"),
                                              page=pb.Page(offset=0, limit=128), columns=columns),
        "filtered_sorted": pb.QuerySamplesRequest(query=pb.SampleQuery(text="label < 5 and signal_1 > 0.5 "
                                                                            "sort by signal_2"),
                                                  page=pb.Page(offset=256, limit=128), columns=columns),
        "table_order": pb.QuerySamplesRequest(page=pb.Page(offset=500_000, limit=128), columns=columns),
    }
    try:
        ctx = _Context()
        t0 = time.perf_counter()
        reply = servicer.QuerySamples(requests["sorted_desc"], ctx)
        cold = (time.perf_counter() - t0) * 1000
        assert len(reply.rows) == 128 and len(reply.columns) == 10 and reply.total == n_rows
        result: dict[str, Any] = {"rows": n_rows, "setup_seconds": round(setup, 2),
                                  "cold_first_call_ms": round(cold, 2)}
        for name, request in requests.items():
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                servicer.QuerySamples(request, ctx)
                times.append((time.perf_counter() - t0) * 1000)
            result[f"{name}_server_median_ms"] = round(statistics.median(times), 2)
            result[f"{name}_server_p90_ms"] = round(_pct(times, 0.9), 2)
        uncached = []  # a new query on an unchanged table: filter + partial sort + rows
        for _ in range(10):
            _clear_order_cache(servicer, exp)
            t0 = time.perf_counter()
            servicer.QuerySamples(requests["sorted_desc"], ctx)
            uncached.append((time.perf_counter() - t0) * 1000)
        result["sorted_desc_new_query_median_ms"] = round(statistics.median(uncached), 2)
        stub = server.stub()
        stub.QuerySamples(requests["sorted_desc"], timeout=30)
        rtts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            stub.QuerySamples(requests["sorted_desc"], timeout=30)
            rtts.append((time.perf_counter() - t0) * 1000)
        result["sorted_desc_round_trip_median_ms"] = round(statistics.median(rtts), 2)
        worst = max(v for k, v in result.items() if k.endswith(("_server_median_ms", "_new_query_median_ms")))
        result.update({"worst_server_median_ms": worst, "target_ms": TARGETS["query_page_ms"],
                       "ok": worst < TARGETS["query_page_ms"]})
        return result
    finally:
        server.close()


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wl-grpc-bench-") as tmp:
        root = Path(tmp)
        only = [n for n in os.environ.get("WL_GRPC_BENCH", "").split(",") if n]
        benches = {"status": bench_status, "control": bench_control, "query_page": bench_query_page,
                   "curves": bench_curves}
        results: dict[str, Any] = {name: fn(root) for name, fn in benches.items() if not only or name in only}
    results["ok"] = all(r.get("ok") for r in results.values() if isinstance(r, dict))
    return results


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--client":
        print(json.dumps(_client_main(json.loads(sys.argv[2]))))
    else:
        print(json.dumps(run(), indent=2))
