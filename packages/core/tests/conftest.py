"""Fixtures of the core tests (helpers live in core_testutil.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def wl(tmp_path, monkeypatch) -> Iterator[object]:
    """The SDK with a fresh process-wide experiment rooted in a temp dir."""
    import weightslab as wl
    from weightslab.sdk import reset_experiment

    reset_experiment()
    monkeypatch.setenv("WEIGHTSLAB_ROOT_LOG_DIR", str(tmp_path / "root"))
    monkeypatch.chdir(tmp_path)
    yield wl
    reset_experiment()
