"""Repository-wide pytest settings: every test obeys WL_TEST_TIMEOUT (default 30 s)."""

from __future__ import annotations

import os

import pytest


def _test_timeout() -> float:
    try:  # through the resolver, so a .env value counts too
        from weightslab.config import ConfigError, resolve
        from weightslab.config.core_settings import TestingSettings

        try:
            return float(resolve([TestingSettings])["testing"].test_timeout)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    except ImportError:
        pass
    raw = os.environ.get("WL_TEST_TIMEOUT", "30").strip()
    try:
        value = float(raw)
    except ValueError:
        raise pytest.UsageError(f"WL_TEST_TIMEOUT={raw!r}: expected a positive number of seconds") from None
    if value <= 0:
        raise pytest.UsageError(f"WL_TEST_TIMEOUT={raw!r}: expected a positive number of seconds")
    return value


def pytest_configure(config: pytest.Config) -> None:
    # pytest-timeout, signal method: a hung test fails with "Timeout" and the run goes on with the
    # next test (SIGALRM interrupts blocking calls in the main thread).
    if getattr(config.option, "timeout", None) in (None, 0):
        config.option.timeout = _test_timeout()
    if getattr(config.option, "timeout_method", None) is None:
        config.option.timeout_method = "signal"
