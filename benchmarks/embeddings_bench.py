"""Embeddings (opt-in) and the scores built on them: step cost, computation time, score quality.

``run()`` (used by ``benchmarks/run.py``) reports:

* ``step``: the LeNet-size loop of ``core_bench`` (batch 64, CPU, one thread), interleaved blocks
  of plain PyTorch, WeightsLab with embeddings off and WeightsLab with ``embeddings=True``
  (a fresh process). Target: on/off ratio <= 1.05. The background scorer runs as in a real run.
* ``compute``: ``neighbours.analyse`` (neighbour search + every score) on synthetic clustered
  64-dim embeddings of 10k, 100k (exact: blocked products) and 1M rows (random-projection
  forest), with a numpy matrix product of the same rows as the baseline of the same run.
* ``quality``: scikit-learn digits with 3% corrupted inputs and 2% near-duplicates, embeddings
  captured from a real training run (module ``"0"``: the image; and the default, the last
  layer's input): AUROC of ``outlier_score`` and of the near-duplicate score beside cleanlab's
  ``OutOfDistribution`` and its Datalab near-duplicate check (same features, cleanlab defaults),
  and precision/recall of the flagged near-duplicates. cleanlab is optional (bench session only).

``python benchmarks/embeddings_bench.py [step|compute|quality] [sizes...] [--out FILE]`` runs one part.
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SIZES = (10_000, 100_000, 1_000_000)


def run() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in ("step", "compute", "quality"):  # each in a fresh process (one experiment per process)
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "result.json"  # not stdout: logs and libraries print there too
            proc = subprocess.run([sys.executable, __file__, part, "--out", str(result)], capture_output=True,
                                  text=True)
            if proc.returncode or not result.exists():
                out[part] = {"error": (proc.stdout + proc.stderr)[-4000:]}
            else:
                out[part] = json.loads(result.read_text())
    out["target_ratio"] = 1.05
    out["ratio_on_vs_off"] = (out.get("step") or {}).get("ratio_on_vs_off")
    return out


# -- step overhead -------------------------------------------------------------------------
def run_step(blocks: int = 30, block_steps: int = 16, batch_size: int = 64) -> dict[str, Any]:
    import torch

    sys.path.insert(0, str(HERE))
    from core_bench import _data, _model

    torch.set_num_threads(1)
    os.environ.setdefault("WEIGHTSLAB_ROOT_LOG_DIR", tempfile.mkdtemp(prefix="wl-bench-"))
    os.environ.setdefault("WEIGHTSLAB_LOG_LEVEL", "WARNING")
    import weightslab as wl

    ds = _data(side=28)
    base = _model("lenet")
    models = {"plain": base, "off": copy.deepcopy(base), "on": copy.deepcopy(base)}
    plain_loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True)
    models["off"] = wl.watch_or_edit(models["off"], flag="model", name="off")
    models["on"] = wl.watch_or_edit(models["on"], flag="model", name="on", embeddings=True)
    opts = {"plain": torch.optim.SGD(models["plain"].parameters(), lr=0.01)}
    for kind in ("off", "on"):
        opts[kind] = wl.watch_or_edit(torch.optim.SGD(models[kind].parameters(), lr=0.01), flag="optimizer",
                                      name=f"opt_{kind}")
    loader = wl.watch_or_edit(ds, flag="data", loader_name="train", batch_size=batch_size, shuffle=True)
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="loss")
    plain_loss = torch.nn.CrossEntropyLoss(reduction="none")

    def endless(iterable: Any) -> Any:
        while True:
            yield from iterable

    plain_batches, wl_batches = endless(plain_loader), endless(loader)

    def block(kind: str) -> float:
        times = []
        model, opt = models[kind], opts[kind]
        for _ in range(block_steps):
            t0 = time.perf_counter()
            if kind == "plain":
                x, y = next(plain_batches)
                opt.zero_grad()
                plain_loss(model(x), y).mean().backward()
                opt.step()
            else:
                x, ids, y = next(wl_batches)
                with wl.guard_training_context:
                    opt.zero_grad()
                    loss_fn(model(x), y, batch_ids=ids).mean().backward()
                    opt.step()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    for _ in range(3):
        for kind in models:
            block(kind)
    medians: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(blocks):
        for kind in models:
            medians[kind].append(block(kind))
    m = {k: statistics.median(v) for k, v in medians.items()}
    index = wl.get_experiment().embeddings
    index.refresh(wait=True, timeout=120)
    status = index.status()
    return {"batch_size": batch_size, "steps_each": blocks * block_steps,
            "plain_median_step_ms": round(m["plain"] * 1e3, 3), "off_median_step_ms": round(m["off"] * 1e3, 3),
            "on_median_step_ms": round(m["on"] * 1e3, 3),
            "ratio_off_vs_plain": round(m["off"] / m["plain"], 4), "ratio_on_vs_plain": round(m["on"] / m["plain"], 4),
            "ratio_on_vs_off": round(m["on"] / m["off"], 4),
            "embedding": {"module": status["module"], "dim": status["dim"], "embedded": status["embedded"],
                          "last_compute_seconds": status["seconds"]}}


# -- computation time ----------------------------------------------------------------------
def clustered(n: int, d: int = 64, clusters: int = 100, intrinsic: int = 8, seed: int = 0) -> np.ndarray:
    """Embedding-like data: clusters of low intrinsic dimension, 1% planted near-duplicates."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, d)) * 3
    basis = rng.normal(size=(clusters, intrinsic, d)).astype(np.float32)
    lab = rng.integers(0, clusters, n)
    x = centers[lab].astype(np.float32)
    for start in range(0, n, 100_000):
        sl = slice(start, start + 100_000)
        z = rng.normal(size=(x[sl].shape[0], intrinsic)).astype(np.float32)
        x[sl] += np.einsum("ni,nid->nd", z, basis[lab[sl]]) + 0.1 * rng.normal(size=x[sl].shape).astype(np.float32)
    copies = rng.choice(n, n // 100, replace=False)
    x[copies[: len(copies) // 2]] = x[copies[len(copies) // 2:]] + 1e-3
    return x


def run_compute(sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    from weightslab.neighbours import EXACT_LIMIT, analyse

    out: dict[str, Any] = {"exact_limit": EXACT_LIMIT}
    for n in sizes:
        x = clustered(n)
        split = (np.arange(n) % 5 == 0).astype(np.int64)
        t0 = time.perf_counter()
        q = analyse(x, split)
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        _ = x[: min(n, 4096)] @ x.T  # baseline: one block of the exact search's products
        base = time.perf_counter() - t0
        planted = n // 200
        out[f"n{n}"] = {"seconds": round(seconds, 2), "exact": q.exact, "near_duplicate_pairs": int(len(q.pairs)),
                        "planted_pairs": planted, "baseline_4096xN_matmul_s": round(base, 3),
                        "ratio_vs_baseline": round(seconds / max(base, 1e-9), 1)}
    return out


# -- score quality -------------------------------------------------------------------------
def _digits_run(embeddings: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """A real training run on digits with injected problems; returns (features, split codes,
    corrupted, injected duplicate pairs as matrix rows)."""
    sys.path.insert(0, str(HERE.parent / "packages" / "core" / "tests"))
    import torch
    import weightslab as wl
    from core_testutil import injected_digits, lenet
    from weightslab.sdk import reset_experiment

    reset_experiment()
    # a fresh root log dir per run: the store of the previous run would hand its embeddings back
    os.environ["WEIGHTSLAB_ROOT_LOG_DIR"] = tempfile.mkdtemp(prefix="wl-bench-")
    torch.set_num_threads(1)
    train, val = injected_digits()
    model = wl.watch_or_edit(lenet(), flag="model", embeddings=embeddings)
    opt = wl.watch_or_edit(torch.optim.Adam(model.parameters(), lr=1e-2), flag="optimizer")
    loaders = {}
    for split, part in (("train", train), ("val", val)):
        ds = torch.utils.data.TensorDataset(torch.from_numpy(part[0]), torch.from_numpy(part[1]))
        loaders[split] = wl.watch_or_edit(ds, flag="data", loader_name=split, batch_size=64,
                                          shuffle=split == "train", is_training=split == "train")
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="loss")
    for _ in range(8):
        for x, ids, y in loaders["train"]:
            opt.zero_grad()
            loss_fn(model(x), y, batch_ids=ids).mean().backward()
            opt.step()
        with wl.guard_testing_context, torch.no_grad():
            for x, ids, y in loaders["val"]:
                loss_fn(model(x), y, batch_ids=ids)
    exp = wl.get_experiment()
    rows, feats = exp.embeddings.matrix()
    parts = {"train": train, "val": val}
    keys = [(str(exp.table.split[r]), int(exp.table.sample_id[r])) for r in rows]
    where = {k: i for i, k in enumerate(keys)}
    corrupted = np.array([parts[s][2][i] for s, i in keys])
    pairs = [(where[(s, i)], where[src]) for s, part in parts.items() for i, src in enumerate(part[3])
             if src is not None]
    split_codes = np.array([s == "val" for s, _ in keys], dtype=np.int64)
    reset_experiment()
    return feats, split_codes, corrupted, pairs


def _pr(flagged: set[int], truth: set[int]) -> dict[str, float]:
    hits = len(flagged & truth)
    return {"precision": round(hits / max(1, len(flagged)), 4), "recall": round(hits / max(1, len(truth)), 4)}


def run_quality() -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score
    from weightslab.neighbours import analyse

    os.environ.setdefault("WEIGHTSLAB_ROOT_LOG_DIR", tempfile.mkdtemp(prefix="wl-bench-"))
    os.environ.setdefault("WEIGHTSLAB_LOG_LEVEL", "WARNING")
    out: dict[str, Any] = {}
    try:
        import cleanlab
        from cleanlab.datalab.internal.issue_manager.duplicate import (
            NearDuplicateIssueManager,
            _compute_scores_with_exp_transform,
        )
        from cleanlab.internal.neighbor.knn_graph import create_knn_graph_and_index
        from cleanlab.outlier import OutOfDistribution

        out["cleanlab_version"] = cleanlab.__version__
        have_cleanlab = True
    except ImportError as exc:
        have_cleanlab = False
        out["cleanlab"] = f"not installed ({exc}); install it in the bench session (pinned in constraints.txt)"
    for label, module in (("image_module_0", "0"), ("default_last_layer_input", True)):
        feats, split, corrupted, pairs = _digits_run(module)
        members = {i for p in pairs for i in p}
        is_member = np.zeros(len(feats), dtype=bool)
        is_member[list(members)] = True
        t0 = time.perf_counter()
        q = analyse(feats, split)
        ours_s = time.perf_counter() - t0
        # near-duplicate score: closeness to the nearest neighbour; flagged: rows with a
        # near_duplicate_of. Corrupted inputs (blank images are exact copies of each other) are left
        # out of the duplicate evaluation
        keep = ~corrupted
        ours_dup = -q.nearest_distance
        res: dict[str, Any] = {
            "rows": len(feats), "dim": int(feats.shape[1]), "corrupted": int(corrupted.sum()),
            "injected_pairs": len(pairs), "weightslab_seconds": round(ours_s, 3),
            "outlier_auroc": {"weightslab": round(float(roc_auc_score(corrupted, q.outlier_score)), 4)},
            "near_duplicate_auroc": {"weightslab": round(float(roc_auc_score(is_member[keep], ours_dup[keep])), 4)},
            "near_duplicate_flagged": {"weightslab": _pr(set(np.flatnonzero((q.near_duplicate_of >= 0) & keep).tolist()),
                                                         members)},
        }
        if have_cleanlab:
            t0 = time.perf_counter()
            ood = OutOfDistribution().fit_score(features=feats.astype(np.float64))
            graph, _ = create_knn_graph_and_index(feats.astype(np.float64), n_neighbors=10)
            nn = graph.data.reshape(len(feats), -1)[:, 0]
            median = max(float(np.median(nn)), 1e-12)
            sets = NearDuplicateIssueManager._neighbors_within_radius(graph, 0.13, median)
            dup_score = _compute_scores_with_exp_transform(nn, temperature=1.0 / median)
            cl_s = time.perf_counter() - t0
            flagged = {i for i, s in enumerate(sets) if len(s) and keep[i]}
            res["cleanlab_seconds"] = round(cl_s, 3)
            res["outlier_auroc"]["cleanlab_ood"] = round(float(roc_auc_score(corrupted, -ood)), 4)
            res["near_duplicate_auroc"]["cleanlab"] = round(float(roc_auc_score(is_member[keep], -dup_score[keep])), 4)
            res["near_duplicate_flagged"]["cleanlab"] = _pr(flagged, members)
        out[label] = res
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    out_file = None
    if "--out" in args:
        at = args.index("--out")
        out_file = Path(args[at + 1])
        del args[at:at + 2]
    part = args[0] if args else "all"
    if part == "step":
        result = run_step()
    elif part == "compute":
        result = run_compute(tuple(int(s) for s in args[1:]) or SIZES)
    elif part == "quality":
        result = run_quality()
    else:
        result = run()
    text = json.dumps(result, indent=2, default=str)
    if out_file is not None:
        out_file.write_text(text)
    else:
        print(text)
