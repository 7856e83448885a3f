"""Fixtures of the Studio tests: one test PKI, one real training job, launched Studios."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from studio_testutil import TrainingJob, base_environ, call, free_port
from weightslab_auth.pki import PKIPaths, create_dev_pki, load_token
from weightslab_studio import grpcweb
from weightslab_studio.envoy_binary import find_envoy
from weightslab_studio.launcher import StudioHandle, launch, make_plan


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKIPaths:
    return create_dev_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def token(pki: PKIPaths) -> str:
    return load_token(pki.directory)


@pytest.fixture(scope="session")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("env") / "empty.env"
    path.write_text("")
    return path


@pytest.fixture(scope="session")
def environ(pki: PKIPaths, token: str, env_file: Path) -> dict[str, str]:
    return base_environ(pki, token, env_file)


@pytest.fixture(scope="session")
def envoy_path() -> Path:
    return find_envoy({})


@pytest.fixture(scope="session")
def job(tmp_path_factory: pytest.TempPathFactory, environ: dict[str, str]) -> Iterator[TrainingJob]:
    with TrainingJob(tmp_path_factory.mktemp("job"), environ) as job:
        yield job


@pytest.fixture
def stub_static(tmp_path: Path) -> Path:
    """A stand-in UI (the launcher tests do not need the built front end)."""
    folder = tmp_path / "static"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text('<!doctype html><title>stub</title><script src="/config.js"></script>\n')
    (folder / "assets" / "app-1234.js").write_text("console.log('app')\n")
    return folder


@pytest.fixture
def start_studio(environ: dict[str, str], envoy_path: Path) -> Iterator[Callable[..., StudioHandle]]:
    """``start_studio(backend_port=..., static_dir=..., environ_extra={...}, **plan overrides)``."""
    handles: list[StudioHandle] = []

    def start(*, environ_extra: dict[str, str] | None = None, probe_backend: bool = True,
              **overrides: Any) -> StudioHandle:
        overrides.setdefault("backend_host", "127.0.0.1")
        overrides.setdefault("envoy_host", "127.0.0.1")
        overrides.setdefault("envoy_port", free_port())
        overrides.setdefault("admin_port", free_port())
        plan = make_plan(environ={**environ, **(environ_extra or {})}, **overrides)
        handle = launch(plan, envoy_binary=envoy_path, probe_backend=probe_backend, concurrency=1)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()


@pytest.fixture
def paused(studio: StudioHandle) -> Iterator[None]:
    """Training paused for the test (the e2e file's own ``studio``): the losses, and so the grid's
    order and the top-k rows, stand still while the page and the backend are compared."""
    assert call(studio, "Pause").status == grpcweb.OK
    try:
        yield
    finally:
        assert call(studio, "Resume").status == grpcweb.OK


@pytest.fixture(scope="session")
def built_ui() -> Path:
    """The front end built into the package (`npm ci && npm run build` in packages/studio/frontend;
    the nox `studio` session does it first). Missing: a failure in CI, a skip elsewhere."""
    from studio_testutil import IN_CI
    from weightslab_studio.launcher import BUILD_HINT, STATIC_DIR

    if not (STATIC_DIR / "index.html").is_file():
        message = f"the Studio front end is not built in {STATIC_DIR}: {BUILD_HINT}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return STATIC_DIR
