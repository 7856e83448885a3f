"""Front-end settings owned by weightslab-studio: every variable by env and .env, bad values,
VITE_HISTOGRAM_MAX_BINS clamping, and the proxy target derived from GRPC_BACKEND_HOST/PORT."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from weightslab.config import ConfigError, resolve
from weightslab_studio.settings import StudioSettings

OWNER = "weightslab-studio"
# variable -> (raw, value shown by `config show --json`, an invalid raw value)
SAMPLES: dict[str, tuple[str, Any, str]] = {
    "GRPC_BACKEND_HOST": ("10.0.0.5", "10.0.0.5", "http://x/y"),
    "GRPC_BACKEND_PORT": ("50052", 50052, "-1"),
    "ENVOY_HOST": ("envoy.internal", "envoy.internal", "a b"),
    "ENVOY_PORT": ("8443", 8443, "port"),
    "ENVOY_ADMIN_PORT": ("9902", 9902, "0"),
    "VITE_HOST": ("127.0.0.1", "127.0.0.1", "bad host"),
    "VITE_PORT": ("5174", 5174, "65536"),
    "VITE_SERVER_HOST": ("wl.example.org", "wl.example.org", "two words"),
    "VITE_SERVER_PORT": ("443", 443, "https"),
    "VITE_SERVER_PROTOCOL": (" HTTP ", "http", "ftp"),
    "VITE_IS_A_SANDBOX": ("yes", True, "sandbox"),
    "VITE_MAX_PREFETCH_BATCHES": ("2", 2, "4"),
    "VITE_HISTOGRAM_MAX_BINS": ("64", 64, "many"),
    "VITE_WS_MAX_IMAGE_CACHE_SIZE": ("12", 12, "-12"),
    "VITE_WS_GRID_CACHE_MAX_MB": ("256", 256, "0"),
    "VITE_WS_MODAL_CACHE_MAX_MB": ("32", 32, "big"),
}
DEFAULTS = {
    "GRPC_BACKEND_HOST": "localhost", "GRPC_BACKEND_PORT": 50051, "ENVOY_HOST": "localhost", "ENVOY_PORT": 8080,
    "ENVOY_ADMIN_PORT": 9901, "VITE_HOST": "0.0.0.0", "VITE_PORT": 5173, "VITE_SERVER_HOST": "localhost",
    "VITE_SERVER_PORT": 8080, "VITE_SERVER_PROTOCOL": "https", "VITE_IS_A_SANDBOX": False,
    "VITE_MAX_PREFETCH_BATCHES": None, "VITE_HISTOGRAM_MAX_BINS": 512, "VITE_WS_MAX_IMAGE_CACHE_SIZE": None,
    "VITE_WS_GRID_CACHE_MAX_MB": 128, "VITE_WS_MODAL_CACHE_MAX_MB": 64,
}


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def show(environ: dict[str, str], cwd: Path) -> dict[str, Any]:
    return resolve([StudioSettings], environ=environ, cwd=cwd).as_json()


def test_every_studio_variable_is_covered_with_the_spec_default(cwd: Path) -> None:
    assert {s.env for s in StudioSettings.settings().values()} == set(SAMPLES) == set(DEFAULTS)
    data = show({}, cwd)
    assert {v: row["value"] for v, row in data.items()} == DEFAULTS
    assert {row["source"] for row in data.values()} == {"default"}
    assert {row["owner"] for row in data.values()} == {OWNER}


def test_the_plugin_contributes_the_section() -> None:
    from weightslab_studio import plugin

    assert plugin.weightslab_config_sections() == [StudioSettings]


@pytest.mark.parametrize("variable", sorted(SAMPLES))
def test_env_and_dotenv_change_the_value(variable: str, cwd: Path) -> None:
    raw, expected, _ = SAMPLES[variable]
    assert expected != DEFAULTS[variable]
    assert show({variable: raw}, cwd)[variable] == {"value": expected, "source": "env", "owner": OWNER}
    (cwd / ".env").write_text(f'{variable}="{raw}"\n')
    assert show({}, cwd)[variable] == {"value": expected, "source": ".env", "owner": OWNER}


@pytest.mark.parametrize("variable", sorted(SAMPLES))
def test_bad_values_fail_naming_variable_value_and_accepted(variable: str, cwd: Path) -> None:
    bad = SAMPLES[variable][2]
    accepted = next(s for s in StudioSettings.settings().values() if s.env == variable).parser.accepted
    with pytest.raises(ConfigError) as err:
        show({variable: bad}, cwd)
    assert str(err.value) == f"{variable}={bad!r}: expected {accepted}"


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record)

    logger = logging.getLogger("weightslab")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield kept
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_histogram_bins_are_clamped_to_512_with_a_warning(cwd: Path, records: list[logging.LogRecord]) -> None:
    assert show({"VITE_HISTOGRAM_MAX_BINS": "4096"}, cwd)["VITE_HISTOGRAM_MAX_BINS"]["value"] == 512
    assert [r.levelname for r in records] == ["WARNING"]
    assert "VITE_HISTOGRAM_MAX_BINS" in records[0].getMessage() and "4096" in records[0].getMessage()
    records.clear()
    assert show({"VITE_HISTOGRAM_MAX_BINS": "512"}, cwd)["VITE_HISTOGRAM_MAX_BINS"]["value"] == 512
    assert show({"VITE_HISTOGRAM_MAX_BINS": "1"}, cwd)["VITE_HISTOGRAM_MAX_BINS"]["value"] == 1
    assert records == []


@pytest.mark.parametrize("raw", ["1", "2", "3"])
def test_prefetch_batches_accept_1_to_3(raw: str, cwd: Path) -> None:
    assert show({"VITE_MAX_PREFETCH_BATCHES": raw}, cwd)["VITE_MAX_PREFETCH_BATCHES"]["value"] == int(raw)


@pytest.mark.parametrize(("host", "target"), [("0.0.0.0", "localhost"), ("::", "localhost"),
                                               ("10.1.2.3", "10.1.2.3"), ("backend.lan", "backend.lan")])
def test_proxy_target_maps_bind_all_to_localhost(host: str, target: str, cwd: Path) -> None:
    config = resolve([StudioSettings], environ={"GRPC_BACKEND_HOST": host, "GRPC_BACKEND_PORT": "6000"}, cwd=cwd)
    assert config["studio"].backend_target() == (target, 6000)
    assert resolve([StudioSettings], environ={}, cwd=cwd)["studio"].backend_target() == ("localhost", 50051)
