"""Settings owned by the core (logging, plugins, evaluation, hyperparameter sync, tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from weightslab.config import fields as f
from weightslab.config.fields import Setting
from weightslab.config.section import SettingsSection

OWNER = "weightslab-core"


class LoggingSettings(SettingsSection):
    section = "logging"
    owner = OWNER

    log_level: Annotated[str, Setting(
        "WEIGHTSLAB_LOG_LEVEL", f.choice("DEBUG", "INFO", "WARNING", "ERROR", "WATCHDOG"),
        "Level of the weightslab logger hierarchy.")] = "INFO"
    log_to_file: Annotated[bool, Setting(
        "WEIGHTSLAB_LOG_TO_FILE", f.boolean,
        "Add a size-rotating log file under <root log dir>/logs.")] = False
    root_log_dir: Annotated[Path | None, Setting(
        "WEIGHTSLAB_ROOT_LOG_DIR", f.path,
        "Root directory of logs, stores, checkpoints and the audit log "
        "(default: root_log_dir/ next to the training script).", kwarg="root_log_dir")] = None
    audit_log_format: Annotated[str, Setting(
        "AUDIT_LOG_FORMAT", f.choice("json", "csv", "none"),
        "Audit trail format: one file per experiment.", weakens=lambda value: value == "none")] = "json"


class PluginSettings(SettingsSection):
    section = "plugins"
    owner = OWNER

    disabled_plugins: Annotated[tuple[str, ...], Setting(
        "WEIGHTSLAB_DISABLED_PLUGINS", f.csv_list, "Plugins (entry-point names) to skip.",
        weakens=lambda names: bool({"auth", "watchdog"} & set(names)))] = ()
    trace_plugins: Annotated[bool, Setting(
        "WEIGHTSLAB_TRACE_PLUGINS", f.boolean, "Log every hook call.")] = False
    env_file: Annotated[Path | None, Setting(
        "WEIGHTSLAB_ENV_FILE", f.path, "Explicit .env file (default: first .env from cwd upwards).")] = None


class EvaluationSettings(SettingsSection):
    section = "evaluation"
    owner = OWNER

    timeout_multiplier: Annotated[float, Setting(
        "WEIGHTSLAB_EVAL_TIMEOUT_MULTIPLIER", f.positive_float,
        "Eval timeout = avg_batch_seconds * nb_batches * multiplier.")] = 1.3
    timeout_min_seconds: Annotated[float, Setting(
        "WEIGHTSLAB_EVAL_TIMEOUT_MIN_SECONDS", f.non_negative_seconds, "Minimum eval timeout.")] = 5.0
    timeout_seconds: Annotated[float, Setting(
        "WEIGHTSLAB_EVAL_TIMEOUT_SECONDS", f.non_negative_seconds,
        "Absolute eval timeout override; 0 = use the formula.")] = 0.0


class ExperimentSettings(SettingsSection):
    section = "experiment"
    owner = OWNER

    enable_hp_sync: Annotated[bool, Setting(
        "WL_ENABLE_HP_SYNC", f.boolean, "Sync hyperparameters with the UI on every step.")] = True
    instance_aggregation: Annotated[str, Setting(
        "WL_INSTANCE_AGGREGATION", f.choice("mean", "max"),
        "How per-instance values fold into one per-sample value.",
        config_key="instance_aggregation")] = "mean"
    lock_timeout_seconds: Annotated[float, Setting(
        "WL_LOCK_TIMEOUT_SECONDS", f.positive_seconds,
        "How long any front end (SDK operations, CLI server, gRPC) waits for the experiment's main "
        "lock before answering 'busy'; capped by GRPC_WATCHDOG_STUCK_SECONDS when the watchdog is "
        "installed.")] = 30.0
    max_tags: Annotated[int, Setting(
        "WL_MAX_TAGS", f.non_negative_int,
        "Max number of tag and categorical-tag columns in the sample table; an edit that would "
        "create one more is refused. 0 = no cap.")] = 256
    checkpoint_keep_last: Annotated[int, Setting(
        "WL_CHECKPOINT_KEEP_LAST", f.non_negative_int,
        "Checkpoints kept per branch: saving one more deletes that branch's oldest. 0 = keep all.")] = 20
    distributed_sync_every: Annotated[int, Setting(
        "WL_DISTRIBUTED_SYNC_EVERY", f.positive_int,
        "Under torch.distributed: every this many training steps (and at each epoch end) rank 0 "
        "gathers the other ranks' per-sample records.")] = 10


class TestingSettings(SettingsSection):
    section = "testing"
    owner = OWNER

    test_timeout: Annotated[float, Setting(
        "WL_TEST_TIMEOUT", f.positive_seconds, "Hard per-test timeout of the project's tests.")] = 30.0


CORE_SECTIONS: tuple[type[SettingsSection], ...] = (
    LoggingSettings, PluginSettings, EvaluationSettings, ExperimentSettings, TestingSettings,
)
