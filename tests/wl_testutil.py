"""Shared data and helpers of the repository-level (integration) tests.

``SAMPLES`` holds, for every variable of ../shared/spec/configuration.md, a valid non-default
raw value, the value ``weightslab config show --json`` must then display, an invalid raw value
(``None`` where any text is valid), and the owner listed for it. The tests check that this
table, the spec and the installed plugins' sections all name the same variables, so a new
setting cannot be added without a sample (and so without being tested).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO.parent / "shared" / "spec" / "configuration.md"
ARCHITECTURE = REPO.parent / "shared" / "spec" / "architecture.md"
IN_CI = bool(os.environ.get("CI"))

FIRST_PARTY = {
    "weightslab-core", "weightslab-cli", "weightslab-grpc-server", "weightslab-auth", "weightslab-watchdog",
    "weightslab-data-cache", "weightslab-agent", "weightslab-studio",
}
PLUGIN_NAMES = {"core", "cli", "grpc_server", "auth", "watchdog", "data_cache", "agent", "studio"}

# Modelled and documented, but in the spec's prose (rules, architecture §1) rather than its tables.
DOCUMENTED_OUTSIDE_TABLES = {"WEIGHTSLAB_ENV_FILE", "WEIGHTSLAB_DISABLED_PLUGINS", "WEIGHTSLAB_TRACE_PLUGINS"}
# Settings this project added beyond ../shared/spec/configuration.md (hardening and the one
# application layer). Each is documented in its package README and docs/SETTINGS_COVERAGE.md
# (checked by the contract test) until the spec lists it.
BEYOND_SPEC = {"WL_CHECKPOINT_KEEP_LAST", "WL_LOCK_TIMEOUT_SECONDS", "GRPC_ALLOW_UNAUTHENTICATED_REMOTE",
               "WL_MAX_TAGS", "WL_DISTRIBUTED_SYNC_EVERY"}
# WEIGHTSLAB_ENV_FILE names the .env file itself: it needs an existing file and cannot come from
# a .env, so the tests give it its own cases instead of a static sample.
ENV_FILE = "WEIGHTSLAB_ENV_FILE"
SECRETS = {"GRPC_AUTH_TOKEN", "GRPC_AUTH_TOKENS", "OPENROUTER_API_KEY"}
CLAMPED = {"WL_PREVIEW_CACHE_WARMUP_WAIT_MS": (0, 1000), "VITE_HISTOGRAM_MAX_BINS": (1, 512)}


@dataclass(frozen=True)
class Sample:
    raw: str
    shown: Any  # the JSON value; for secrets the fingerprinted form is computed from raw
    invalid: str | None
    owner: str


def _s(raw: str, shown: Any, invalid: str | None, owner: str) -> Sample:
    return Sample(raw, shown, invalid, f"weightslab-{owner}")


SAMPLES: dict[str, Sample] = {
    # Logging — core
    "WEIGHTSLAB_LOG_LEVEL": _s(" watchdog ", "WATCHDOG", "LOUD", "core"),
    "WEIGHTSLAB_LOG_TO_FILE": _s("On", True, "file", "core"),
    "WEIGHTSLAB_ROOT_LOG_DIR": _s("/srv/wl/runs", "/srv/wl/runs", "", "core"),
    "AUDIT_LOG_FORMAT": _s(" CSV ", "csv", "xml", "core"),
    # plugin manager — core
    "WEIGHTSLAB_DISABLED_PLUGINS": _s("no-such-plugin, other", ["no-such-plugin", "other"], None, "core"),
    "WEIGHTSLAB_TRACE_PLUGINS": _s("yes", True, "verbose", "core"),
    # CLI inspection server — cli
    "CLI_HOST": _s("127.0.0.1", "127.0.0.1", "bad host", "cli"),
    "CLI_PORT": _s("6000", 6000, "70000", "cli"),
    # gRPC server — grpc_server
    "GRPC_BACKEND_HOST": _s("10.0.0.5", "10.0.0.5", "http://x/y", "grpc-server"),
    "GRPC_BACKEND_PORT": _s("50052", 50052, "-1", "grpc-server"),
    "GRPC_MAX_MESSAGE_BYTES": _s("1048576", 1048576, "lots", "grpc-server"),
    "GRPC_MAX_CONCURRENT_RPCS": _s("16", 16, "0", "grpc-server"),
    "GRPC_VERBOSITY": _s("debug", "DEBUG", "TRACE", "grpc-server"),
    "GRPC_ALLOW_UNAUTHENTICATED_REMOTE": _s("yes", True, "maybe", "grpc-server"),
    # TLS / auth — auth
    "GRPC_TLS_ENABLED": _s("0", False, "disabled", "auth"),
    "GRPC_TLS_CERT_DIR": _s("/srv/certs", "/srv/certs", "", "auth"),
    "GRPC_TLS_KEY_FILE": _s("/srv/certs/server.key", "/srv/certs/server.key", "", "auth"),
    "GRPC_TLS_CERT_FILE": _s("/srv/certs/server.pem", "/srv/certs/server.pem", "", "auth"),
    "GRPC_TLS_CA_FILE": _s("/srv/certs/ca.pem", "/srv/certs/ca.pem", "", "auth"),
    "GRPC_TLS_REQUIRE_CLIENT_AUTH": _s(" No ", False, "optional", "auth"),
    "GRPC_AUTH_TOKEN": _s("tok-0123456789abcdef-secret", "<fingerprint>", None, "auth"),
    "GRPC_AUTH_TOKENS": _s("old-aaaaaaaaaaaaaaaa,new-bbbbbbbbbbbbbbbb", "<fingerprint>", None, "auth"),
    # Watchdog — watchdog
    "WEIGHTSLAB_DISABLE_WATCHDOGS": _s("1", True, "2", "watchdog"),
    "GRPC_WATCHDOG_STUCK_SECONDS": _s("120", 120.0, "inf", "watchdog"),
    "GRPC_WATCHDOG_INTERVAL_SECONDS": _s("0.5", 0.5, "abc", "watchdog"),
    "GRPC_WATCHDOG_RESTART_THRESHOLD": _s("5", 5, "0", "watchdog"),
    "GRPC_WATCHDOG_INFLIGHT_DETAILS_LIMIT": _s("0", 0, "-3", "watchdog"),
    "GRPC_WATCHDOG_EXIT_ON_STUCK": _s("TRUE", True, "exit", "watchdog"),
    # Data and cache — data_cache (WL_ENABLE_HP_SYNC: core)
    "WEIGHTSLAB_SAVE_PREDICTIONS_IN_H5": _s("false", False, "h5", "data-cache"),
    "WL_MAX_PREVIEW_CACHE_SIZE": _s("500", 500, "0", "data-cache"),
    "WL_PRELOAD_IMAGE_OVERVIEW": _s("no", False, "later", "data-cache"),
    "WL_DEFAULT_THUMBNAIL_SIZE": _s("256", 256, "0", "data-cache"),
    "WL_BATCH_CHUNK_SIZE": _s("64", 64, "-1", "data-cache"),
    "WL_PREVIEW_CACHE_WARMUP_WAIT_MS": _s("250", 250, "slow", "data-cache"),
    "WL_ENABLE_HP_SYNC": _s("off", False, "sometimes", "core"),
    "WL_INSTANCE_AGGREGATION": _s("MAX", "max", "median", "core"),
    "WL_LOCK_TIMEOUT_SECONDS": _s("2.5", 2.5, "0", "core"),
    "WL_MAX_TAGS": _s("64", 64, "-1", "core"),
    "WL_CHECKPOINT_KEEP_LAST": _s("0", 0, "many", "core"),
    "WL_DISTRIBUTED_SYNC_EVERY": _s("25", 25, "0", "core"),
    "WL_MAX_POINTS_PER_SAMPLE": _s("0", 0, "-5", "data-cache"),
    # Evaluation — core
    "WEIGHTSLAB_EVAL_TIMEOUT_MULTIPLIER": _s("2.5", 2.5, "0", "core"),
    "WEIGHTSLAB_EVAL_TIMEOUT_MIN_SECONDS": _s("7", 7.0, "-1", "core"),
    "WEIGHTSLAB_EVAL_TIMEOUT_SECONDS": _s("12.5", 12.5, "soon", "core"),
    # Agent — agent
    "OPENROUTER_API_KEY": _s("sk-or-v1-0123456789abcdef", "<fingerprint>", None, "agent"),
    "AGENT_CONFIG_PATH": _s("/srv/wl/agent", "/srv/wl/agent", "", "agent"),
    # Testing — core
    "WL_TEST_TIMEOUT": _s("45", 45.0, "0", "core"),
    # Weights Studio — studio
    "ENVOY_HOST": _s("envoy.internal", "envoy.internal", "a b", "studio"),
    "ENVOY_PORT": _s("8443", 8443, "port", "studio"),
    "ENVOY_ADMIN_PORT": _s("9902", 9902, "0", "studio"),
    "VITE_HOST": _s("127.0.0.1", "127.0.0.1", "bad host", "studio"),
    "VITE_PORT": _s("5174", 5174, "65536", "studio"),
    "VITE_SERVER_HOST": _s("wl.example.org", "wl.example.org", "two words", "studio"),
    "VITE_SERVER_PORT": _s("443", 443, "https", "studio"),
    "VITE_SERVER_PROTOCOL": _s("HTTP", "http", "ftp", "studio"),
    "VITE_IS_A_SANDBOX": _s("yes", True, "sandbox", "studio"),
    "VITE_MAX_PREFETCH_BATCHES": _s("2", 2, "4", "studio"),
    "VITE_HISTOGRAM_MAX_BINS": _s("64", 64, "many", "studio"),
    "VITE_WS_MAX_IMAGE_CACHE_SIZE": _s("12", 12, "-12", "studio"),
    "VITE_WS_GRID_CACHE_MAX_MB": _s("256", 256, "0", "studio"),
    "VITE_WS_MODAL_CACHE_MAX_MB": _s("32", 32, "big", "studio"),
}


def shown(variable: str) -> Any:
    """The JSON value `config show --json` displays for the sample (secrets fingerprinted)."""
    from weightslab.config import fingerprint

    sample = SAMPLES[variable]
    if variable in SECRETS:
        return f"set (fingerprint {fingerprint(sample.raw)})"
    return sample.shown


def spec_file(path: Path = SPEC) -> Path:
    if not path.is_file():  # never a silent skip: the spec-sync tests would check nothing
        pytest.fail(f"{path} is missing: the spec-sync tests need ../shared/spec beside the repository")
    return path


def spec_table_variables(path: Path = SPEC) -> set[str]:
    """Every `VAR` in the first column of a table row of the configuration spec."""
    found = set()
    for line in spec_file(path).read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        match = re.fullmatch(r"\s*`([A-Z][A-Z0-9_]*)`\s*", line.split("|")[1])
        if match:
            found.add(match.group(1))
    return found


def write_env(folder: Path, values: dict[str, str], name: str = ".env") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(f'{key}="{value}"\n' for key, value in values.items()), encoding="utf-8")
    return path


def console_script() -> str:
    script = Path(sys.executable).parent / "weightslab"
    if script.exists():
        return str(script)
    found = shutil.which("weightslab")
    assert found, "the `weightslab` console script is not installed (pip install -e packages/cli)"
    return found


def base_env(**extra: str) -> dict[str, str]:
    """A controlled environment: nothing of the caller's WeightsLab settings leaks in."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "SYSTEMROOT", "TMPDIR") if key in os.environ}
    env.update({"LC_ALL": "C.UTF-8", "COLUMNS": "250", "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(extra)
    return env


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        assert self.returncode == 0, self.stderr
        return json.loads(self.stdout)


def weightslab(*args: str, env: dict[str, str], cwd: Path) -> Run:
    """Run the real console script (``weightslab ARGS``) in a subprocess."""
    done = subprocess.run([console_script(), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    return Run(done.returncode, done.stdout, done.stderr)


def example_plugin_installed() -> bool:
    from importlib import metadata

    try:
        metadata.version("weightslab-example-plugin")
    except metadata.PackageNotFoundError:
        return False
    return True


def require_example_plugin() -> None:
    """Skip only outside CI: the integration session installs the example plugin and must run these."""
    if not example_plugin_installed():
        if IN_CI:
            pytest.fail("weightslab-example-plugin is not installed (the integration session installs it)")
        pytest.skip("weightslab-example-plugin not installed: pip install -e examples/weightslab-example-plugin")
