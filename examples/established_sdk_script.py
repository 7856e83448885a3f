"""A training script written against the established WeightsLab (1.x) SDK, run unmodified.

This is the migration example: every call below is the established form (YAML
hyperparameters with ``defaults=``/``poll_interval=``, a model moved with ``device=``, loaders
with the established keywords, a dataset that returns its own ids, two watched losses with
``signal_name=``, a stateful torchmetrics-style metric, ``start_training(timeout=...)``, a step
loop on ``next(train_loader)``, a periodic test pass with ``save_signals(...)``, periodic
exports and ``keep_serving``). Only the data is ours: scikit-learn's digits with 10% of the
training labels flipped, so ``suspected_mislabel`` has something to find.

    python examples/established_sdk_script.py --root /tmp/wl-established --steps 200
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
import weightslab as wl
import yaml
from sklearn.datasets import load_digits


class DigitsWithIds(torch.utils.data.Dataset):
    """Items are ``(image, sample_id, label)``: the shape established examples write."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, first_id: int) -> None:
        self.images = torch.tensor(images)
        self.labels = torch.tensor(labels)
        self.first_id = first_id

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        return self.images[i], self.first_id + i, self.labels[i]


class Accuracy:
    """A stateful metric with the torchmetrics interface (``update``/``compute``/``reset``)."""

    def __init__(self) -> None:
        self.reset()

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.correct += int((preds == target).sum())
        self.total += int(target.numel())

    def compute(self) -> torch.Tensor:
        return torch.tensor(self.correct / max(self.total, 1))

    def reset(self) -> None:
        self.correct = 0
        self.total = 0


def make_data(noise: float = 0.1, seed: int = 0) -> tuple[DigitsWithIds, DigitsWithIds, np.ndarray]:
    digits = load_digits()
    x = (digits.images[:, None] / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    n_train = 1400
    noisy = rng.random(n_train) < noise
    y_train = y[:n_train].copy()
    y_train[noisy] = (y_train[noisy] + rng.integers(1, 10, int(noisy.sum()))) % 10
    return (DigitsWithIds(x[:n_train], y_train, 0), DigitsWithIds(x[n_train:], y[n_train:], 100_000),
            np.flatnonzero(noisy))


def main(root: Path, steps: int = 200, eval_every: int = 50) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    hp_file = root / "config.yaml"
    hp_file.write_text(yaml.safe_dump({"lr": 0.1, "batch_size": 64}))
    wl.set_log_directory(root / "logs")
    wl.seed_everything(0)
    parameters = wl.watch_or_edit(str(hp_file), flag="hyperparameters", defaults={"lr": 0.05, "batch_size": 32,
                                                                                  "eval_every": eval_every},
                                  poll_interval=1.0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    model = wl.watch_or_edit(net, flag="model", device="cpu")
    optimizer = wl.watch_or_edit(torch.optim.SGD(model.parameters(), lr=parameters["lr"]), flag="optimizer")
    train_set, test_set, noisy = make_data()
    train_loader = wl.watch_or_edit(
        train_set, flag="data", loader_name="train_loader", batch_size=parameters["batch_size"], shuffle=True,
        is_training=True, compute_hash=False, preload_labels=True, preload_metadata=True,
        enable_h5_persistence=True, num_workers=0, drop_last=False, pin_memory=False)
    test_loader = wl.watch_or_edit(
        test_set, flag="data", loader_name="test_loader", batch_size=128, shuffle=False, is_training=False,
        compute_hash=False, preload_labels=True)
    train_criterion = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss",
                                       signal_name="train-loss-CE", log=True)
    test_criterion = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss",
                                      signal_name="test-loss-CE", log=True)
    test_metric = wl.watch_or_edit(Accuracy(), flag="metric", signal_name="test-accuracy", log=True)

    wl.serve(serving_grpc=False, serving_cli=False)
    wl.start_training(timeout=3)
    accuracies = []
    for step in range(steps):
        with wl.guard_training_context:
            inputs, ids, labels = next(train_loader)
            optimizer.zero_grad()
            preds_raw = model(inputs)
            loss = train_criterion(preds_raw, labels, batch_ids=ids, preds=preds_raw.argmax(dim=1))
            loss.mean().backward()
            optimizer.step()
        if (step + 1) % parameters["eval_every"] == 0:
            with wl.guard_testing_context:
                for inputs, ids, labels in test_loader:
                    preds_raw = model(inputs)
                    preds = preds_raw.argmax(dim=1)
                    test_criterion(preds_raw, labels, batch_ids=ids, preds=preds)
                    test_metric.update(preds, labels)
                    confidence = torch.softmax(preds_raw, dim=1).max(dim=1).values
                    wl.save_signals(preds_raw=preds_raw, targets=labels, batch_ids=ids,
                                    signals={"test-confidence": confidence}, preds=preds)
                accuracies.append(float(test_metric.compute()))
                test_metric.reset()
            wl.write_history()
            wl.write_dataframe()
    wl.keep_serving(timeout=0)
    return {"model": model, "noisy_ids": noisy, "accuracies": accuracies}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("wl-established"))
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    result = main(args.root, args.steps)
    print(f"test accuracy per evaluation: {', '.join(f'{a:.3f}' for a in result['accuracies'])}")
    print(f"experiment hash: {wl.get_current_experiment_hash()}")
