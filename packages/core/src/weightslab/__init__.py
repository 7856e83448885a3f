"""WeightsLab: inspect and edit a PyTorch training run while it trains.

``import weightslab as wl`` is cheap: the SDK is loaded on first attribute access and
importing changes no environment variable, creates no file and opens no socket.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Public name -> module that defines it (loaded lazily, PEP 562).
_EXPORTS: dict[str, str] = {
    "watch_or_edit": "weightslab.sdk",
    "serve": "weightslab.sdk",
    "signal": "weightslab.sdk",
    "save_signals": "weightslab.sdk",
    "tag_samples": "weightslab.sdk",
    "untag_samples": "weightslab.sdk",
    "discard_samples": "weightslab.sdk",
    "restore_samples": "weightslab.sdk",
    "dataframe": "weightslab.sdk",
    "write_dataframe": "weightslab.sdk",
    "write_history": "weightslab.sdk",
    "get_age": "weightslab.sdk",
    "pause": "weightslab.sdk",
    "resume": "weightslab.sdk",
    "start_training": "weightslab.sdk",
    "keep_serving": "weightslab.sdk",
    "guard_training_context": "weightslab.sdk",
    "guard_testing_context": "weightslab.sdk",
    "eval_fn": "weightslab.sdk",
    "get_experiment": "weightslab.sdk",
    "reset_experiment": "weightslab.sdk",
    "weightslab_rlock": "weightslab.sdk",
    "try_acquire_rlock": "weightslab.sdk",
    "ConfigError": "weightslab.config.errors",
    # The established SDK's names (see the core README, "Coming from WeightsLab 1.x").
    "clear_all": "weightslab.sdk",
    "SignalContext": "weightslab.signals",
    "register_categorical_tag": "weightslab.sdk_samples",
    "set_categorical_tag": "weightslab.sdk_samples",
    "get_samples_by_tag": "weightslab.sdk_samples",
    "get_discarded_samples": "weightslab.sdk_samples",
    "query_signal_history": "weightslab.sdk_history",
    "query_sample_history": "weightslab.sdk_history",
    "query_instance_history": "weightslab.sdk_history",
    "get_current_experiment_hash": "weightslab.sdk_history",
    "save_instance_signals": "weightslab.sdk_signals",
    "save_group_signals": "weightslab.sdk_signals",
    "compute_signals": "weightslab.sdk_signals",
    "run_pending_evaluation": "weightslab.sdk_eval",
    "trigger_pending_evaluation_async": "weightslab.sdk_eval",
    "relabel": "weightslab.sdk_labels",
    "relabel_to_suggestion": "weightslab.sdk_labels",
    "revert_labels": "weightslab.sdk_labels",
    "export_labels": "weightslab.sdk_labels",
    "seed_everything": "weightslab.utils",
    "setup_logging": "weightslab.utils",
    "set_log_directory": "weightslab.utils",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'weightslab' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    if name != "weightslab_rlock":  # that one follows the current experiment
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
