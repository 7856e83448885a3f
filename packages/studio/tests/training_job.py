"""A real training job for the Studio's end-to-end tests and browser benchmarks.

Trains the demo's small CNN on scikit-learn's digits (real 8x8 images; ``--samples`` above
1,797 repeats them with a little noise), watched by WeightsLab through the public SDK, and
serves the gRPC API on 127.0.0.1 with TLS + mTLS + token (GRPC_TLS_CERT_DIR / GRPC_AUTH_TOKEN
from the environment). Writes ``{"grpc_port": N}`` to ``--ready-file`` once serving, and one
JSON line ``{"step": s, "ids": [...]}`` per training batch to ``--seen-file`` so a test can check
which samples the loop still serves. Runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np


def digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from weightslab_cli.demo import _digits

    images, labels = _digits()
    x = (images.astype(np.float32) / 16.0)[:, None, :, :]
    if n <= len(x):
        return x[:n], labels[:n]
    rng = np.random.default_rng(seed)
    idx = np.arange(n) % len(x)
    noisy = np.clip(x[idx] + rng.normal(0, 0.05, size=(n, 1, 8, 8)).astype(np.float32), 0.0, 1.0)
    return noisy, labels[idx]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--seen-file", type=Path)
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--throttle", type=float, default=0.05, help="seconds between steps (keeps the CPU free)")
    parser.add_argument("--max-epochs", type=int, default=0, help="0 = until stopped")
    parser.add_argument("--extra-signals", type=int, default=0,
                        help="scalar curves bench_00.. logged every step besides loss/accuracy (plots benchmark)")
    parser.add_argument("--prefill-steps", type=int, default=0,
                        help="history of the extra signals before training starts (steps 1..N)")
    parser.add_argument("--hp", action="store_true", help="watch live hyperparameters (optimizer.lr, ...)")
    parser.add_argument("--slow-eval", type=float, default=0.0,
                        help="register an evaluation function taking this many seconds per batch (cancel tests)")
    args = parser.parse_args()

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        if "weightslab" in sys.modules:  # a loop a test left paused must not wait at its boundary forever
            import weightslab as wl

            threading.Thread(target=wl.get_experiment().control.close, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    import torch
    import weightslab as wl
    from weightslab_cli.demo import accuracy, make_model

    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y = digits(args.samples)
    experiment = wl.get_experiment(root_log_dir=args.root)
    experiment.start()
    model = wl.watch_or_edit(make_model(), flag="model")
    if args.hp:  # one key of each type the Studio edits: float (applied to the optimizer), int, bool, text
        wl.watch_or_edit({"optimizer": {"lr": 0.003}, "epochs": 100, "augment": False, "note": "digits"}, flag="hp")
    optimizer = wl.watch_or_edit(torch.optim.Adam(model.parameters(), lr=0.003), flag="optimizer")
    criterion = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="loss")
    metric = wl.watch_or_edit(accuracy, flag="metric", name="accuracy")
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    loader = wl.watch_or_edit(dataset, flag="data", loader_name="train", batch_size=args.batch_size,
                              shuffle=True, seed=0, labels=y)
    extra = [f"bench_{i:02d}" for i in range(args.extra_signals)]
    if args.slow_eval > 0:
        # the automatic choice (the first registered function): a pass long enough to cancel
        @wl.eval_fn(name="slow")
        def slow_eval(ctx: object) -> dict[str, float]:
            total, seen = 0.0, 0
            for xb, ids, yb, *_ in ctx.batches:  # type: ignore[attr-defined]
                if stop.wait(args.slow_eval) or ctx.should_stop():  # type: ignore[attr-defined]
                    break
                with torch.no_grad():
                    total += float(torch.nn.functional.cross_entropy(ctx.model(xb), yb, reduction="sum"))  # type: ignore[attr-defined]
                seen += len(ids)
            return {"eval_loss": total / max(1, seen)}

    def log_extra(step: int) -> None:
        # one point per extra signal and step, straight into the history the API serves
        for i, name in enumerate(extra):
            experiment.history.append_curve(name, "train", str(experiment.branch), step,
                                            float(np.exp(-step / 30_000) * (1 + i) + 0.05 * np.sin(step / 50 + i)))

    for step in range(1, args.prefill_steps + 1):
        log_extra(step)
    services = wl.serve(serving_grpc=True, serving_cli=False, grpc_host="127.0.0.1", grpc_port=0)
    port = services["grpc"].port
    tmp = args.ready_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"grpc_port": port, "pid": os.getpid()}))
    tmp.replace(args.ready_file)

    seen = args.seen_file.open("a", encoding="utf-8") if args.seen_file else None
    epoch = 0
    try:
        while not stop.is_set() and (args.max_epochs == 0 or epoch < args.max_epochs):
            model.train()
            for xb, ids, yb in loader:
                optimizer.zero_grad()
                logits = model(xb)
                losses = criterion(logits, yb, batch_ids=ids)
                losses.mean().backward()
                optimizer.step()
                metric(logits.argmax(dim=1), yb, batch_ids=ids)
                if extra:
                    log_extra(args.prefill_steps + int(experiment.step))
                if seen is not None:
                    batch = [str(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]
                    # "lr": what the optimizer used for this step (a test reads it to see an edit land)
                    line = {"step": int(experiment.step), "ids": batch, "lr": optimizer.param_groups[0]["lr"]}
                    seen.write(json.dumps(line) + "\n")
                    seen.flush()
                if stop.wait(args.throttle):
                    break
            epoch += 1
        if not stop.is_set():
            stop.wait()
    finally:
        if seen is not None:
            seen.close()
        wl.reset_experiment()
    return 0


if __name__ == "__main__":
    sys.exit(main())
