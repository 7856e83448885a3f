"""Logging of the ``weightslab`` logger hierarchy (never the user's root logger)."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import TextIO

WATCHDOG = 35
LOGGER_NAME = "weightslab"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_MARK = "_weightslab_handler"


def register_levels() -> None:
    logging.addLevelName(WATCHDOG, "WATCHDOG")


register_levels()  # so that `log.log(WATCHDOG, ...)` prints "WATCHDOG" even before configure_logging


def level_number(name: str) -> int:
    return WATCHDOG if name.upper() == "WATCHDOG" else logging.getLevelName(name.upper())


def _ours(handler: logging.Handler) -> bool:
    return bool(getattr(handler, _HANDLER_MARK, False))


class ConfigWarningsOnce(logging.Filter):
    """Let each configuration warning through once per process.

    The configuration is resolved several times (the CLI, the experiment, each service's
    start-up check), and each resolution would repeat the same warning (a clamped value, an
    ignored .env entry).
    """

    _seen: dict[str, set[str]] = {}  # per destination ("console", "file"): survives reconfiguration
    _MAX = 1000  # bounded: distinct config warnings are few

    def __init__(self, destination: str) -> None:
        super().__init__()
        self._messages = self._seen.setdefault(destination, set())

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("weightslab.config") or record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if message in self._messages:
            return False
        if len(self._messages) < self._MAX:
            self._messages.add(message)
        return True


def configure_logging(level: str = "INFO", *, log_to_file: bool = False,
                      log_dir: Path | None = None, max_bytes: int = 10 * 2**20,
                      backup_count: int = 5, stream: TextIO | None = None) -> logging.Logger:
    """Apply ``WEIGHTSLAB_LOG_LEVEL`` / ``WEIGHTSLAB_LOG_TO_FILE`` to the ``weightslab`` hierarchy.

    Idempotent: handlers added by an earlier call are replaced, other handlers are kept.
    ``stream`` defaults to stdout (the training script's output); the CLI passes stderr so
    that machine-readable output on stdout stays clean.
    """
    register_levels()
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level_number(level))
    for handler in list(logger.handlers):
        if _ours(handler):
            if stream is None and isinstance(handler, logging.StreamHandler) and \
                    not isinstance(handler, logging.FileHandler):
                stream = handler.stream  # keep the stream an earlier caller chose (e.g. the CLI's stderr)
            logger.removeHandler(handler)
            handler.close()
    console = logging.StreamHandler(stream if stream is not None else sys.stdout)
    console.setFormatter(logging.Formatter(_FORMAT))
    console.addFilter(ConfigWarningsOnce("console"))
    setattr(console, _HANDLER_MARK, True)
    logger.addHandler(console)
    if log_to_file:
        if log_dir is None:
            raise ValueError("WEIGHTSLAB_LOG_TO_FILE=1 needs a root log dir")
        (log_dir / "logs").mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            log_dir / "logs" / "weightslab.log", maxBytes=max_bytes, backupCount=backup_count,
            encoding="utf-8")
        rotating.setFormatter(logging.Formatter(_FORMAT))
        rotating.addFilter(ConfigWarningsOnce("file"))
        setattr(rotating, _HANDLER_MARK, True)
        logger.addHandler(rotating)
    logger.propagate = False
    return logger


def default_root_log_dir(argv0: str | None = None) -> Path:
    """``root_log_dir/`` next to the training script, or in cwd for interactive sessions."""
    script = argv0 if argv0 is not None else (sys.argv[0] if sys.argv else "")
    if script and script not in ("-c", "-m", "") and Path(script).is_file():
        return Path(script).resolve().parent / "root_log_dir"
    return Path.cwd() / "root_log_dir"
