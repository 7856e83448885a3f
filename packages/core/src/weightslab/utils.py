"""Top-level utilities of the established SDK: seeding, logging, the log directory."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "WATCHDOG")


def seed_everything(seed: int) -> int:
    """Seed Python's ``random``, numpy and (when installed) torch, CPU and CUDA; returns the seed."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"seed={seed!r}: expected an integer in 0..2**32-1")
    random.seed(seed)
    np.random.seed(seed)
    from weightslab._torch import torch_or_none

    torch = torch_or_none()
    if torch is not None:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    return seed


def setup_logging(level: str = "INFO", log_to_file: bool = False, log_dir: str | Path | None = None) -> None:
    """Configure the ``weightslab`` loggers (``level`` as ``WEIGHTSLAB_LOG_LEVEL`` accepts)."""
    from weightslab.log import configure_logging
    from weightslab.sdk import get_experiment

    name = str(level).upper()
    if name not in LEVELS:
        raise ValueError(f"level={level!r}: expected one of {', '.join(LEVELS)}")
    experiment = get_experiment()
    target = Path(log_dir) if log_dir is not None else experiment.root_log_dir
    configure_logging(name, log_to_file=bool(log_to_file), log_dir=target)
    experiment.log_override = (name, bool(log_to_file))


def set_log_directory(path: str | Path) -> Path:
    """Use ``path`` as the root log dir (before the experiment writes anything); returns it."""
    from weightslab.sdk import get_experiment

    experiment = get_experiment()
    experiment.set_root_log_dir(path)
    return experiment.root_log_dir
