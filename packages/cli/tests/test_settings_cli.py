"""Settings owned by weightslab-cli (CLI_HOST, CLI_PORT) and the `weightslab config` commands
run through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from weightslab.config import ConfigError, resolve
from weightslab_cli.settings import CliSettings

OWNER = "weightslab-cli"


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def show(cwd: Path, environ: dict[str, str], **kw) -> dict:
    return resolve([CliSettings], environ=environ, cwd=cwd, **kw).as_json()


def weightslab(*args: str, cwd: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "weightslab"
    env = {k: os.environ[k] for k in ("PATH", "HOME", "SYSTEMROOT") if k in os.environ}
    env.update({"COLUMNS": "250", "LC_ALL": "C.UTF-8"}, **environ)
    return subprocess.run([str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_defaults(cwd: Path) -> None:
    assert show(cwd, {}) == {"CLI_HOST": {"value": "0.0.0.0", "source": "default", "owner": OWNER},
                             "CLI_PORT": {"value": 50051, "source": "default", "owner": OWNER}}


@pytest.mark.parametrize(("variable", "raw", "expected"), [("CLI_HOST", " 127.0.0.1 ", "127.0.0.1"),
                                                           ("CLI_HOST", "inspect.lan", "inspect.lan"),
                                                           ("CLI_PORT", "6000", 6000)])
def test_env_and_dotenv(cwd: Path, variable: str, raw: str, expected: object) -> None:
    assert show(cwd, {variable: raw})[variable] == {"value": expected, "source": "env", "owner": OWNER}
    (cwd / ".env").write_text(f'{variable}="{raw}"\n')
    assert show(cwd, {})[variable] == {"value": expected, "source": ".env", "owner": OWNER}


def test_kwargs_beat_env(cwd: Path) -> None:
    data = show(cwd, {"CLI_HOST": "10.0.0.1", "CLI_PORT": "6000"}, kwargs={"cli_host": "127.0.0.1", "cli_port": 7000})
    assert (data["CLI_HOST"]["value"], data["CLI_PORT"]["value"]) == ("127.0.0.1", 7000)
    assert data["CLI_HOST"]["source"] == data["CLI_PORT"]["source"] == "kwarg"


@pytest.mark.parametrize(("variable", "bad", "accepted"), [
    ("CLI_PORT", "70000", "a TCP port number 0..65535 (0 = any free port)"), ("CLI_PORT", "-1", "a TCP port number 0..65535 (0 = any free port)"),
    ("CLI_PORT", "http", "a TCP port number 0..65535 (0 = any free port)"), ("CLI_HOST", "a host", "a host name or IP address"),
    ("CLI_HOST", "", "a host name or IP address")])
def test_bad_values(cwd: Path, variable: str, bad: str, accepted: str) -> None:
    with pytest.raises(ConfigError) as err:
        show(cwd, {variable: bad})
    assert str(err.value) == f"{variable}={bad!r}: expected {accepted}"


def test_config_show_json_through_the_console_script(cwd: Path) -> None:
    (cwd / ".env").write_text("CLI_PORT=6000\n")
    done = weightslab("config", "show", "--json", cwd=cwd, CLI_HOST="127.0.0.1")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["CLI_PORT"] == {"value": 6000, "source": ".env", "owner": OWNER}
    assert data["CLI_HOST"] == {"value": "127.0.0.1", "source": "env", "owner": OWNER}
    assert data["WEIGHTSLAB_ENV_FILE"]["value"] == str(cwd / ".env")


def test_config_show_table_through_the_console_script(cwd: Path) -> None:
    done = weightslab("config", "show", cwd=cwd, CLI_PORT="6000")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "CLI_PORT" in line)
    assert "6000" in row and "env" in row and OWNER in row
    assert ".env file: none found" in done.stdout


def test_config_check_rejects_a_bad_value_naming_it(cwd: Path) -> None:
    done = weightslab("config", "check", cwd=cwd, CLI_PORT="70000")
    assert done.returncode != 0
    assert "CLI_PORT='70000': expected a TCP port number 0..65535" in done.stderr


def test_config_show_prints_each_configuration_warning_once(cwd: Path) -> None:
    done = weightslab("config", "show", cwd=cwd, WL_PREVIEW_CACHE_WARMUP_WAIT_MS="5000")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("WL_PREVIEW_CACHE_WARMUP_WAIT_MS='5000' is outside 0..1000") == 1
    bad = weightslab("config", "check", cwd=cwd, GRPC_BACKEND_PORT="99999")  # read by two packages
    assert bad.returncode != 0 and bad.stderr.count("GRPC_BACKEND_PORT='99999'") == 1


def test_config_show_names_the_derived_tls_files(cwd: Path, tmp_path: Path) -> None:
    pytest.importorskip("weightslab_auth")
    certs = tmp_path / "certs"
    done = weightslab("config", "show", "--json", cwd=cwd, GRPC_TLS_CERT_DIR=str(certs))
    data = json.loads(done.stdout)
    for variable, name in (("GRPC_TLS_KEY_FILE", "backend-server.key"), ("GRPC_TLS_CERT_FILE", "backend-server.crt"),
                           ("GRPC_TLS_CA_FILE", "ca.crt")):
        assert data[variable]["value"] == str(certs / name)
        assert data[variable]["source"] == "derived from GRPC_TLS_CERT_DIR"
    assert data["GRPC_AUTH_TOKEN"]["value"] == "unset" and data["GRPC_AUTH_TOKENS"]["value"] == "unset"
    explicit = weightslab("config", "show", "--json", cwd=cwd, GRPC_TLS_CERT_DIR=str(certs),
                          GRPC_TLS_KEY_FILE=str(tmp_path / "k.key"))
    assert json.loads(explicit.stdout)["GRPC_TLS_KEY_FILE"] == {"value": str(tmp_path / "k.key"), "source": "env",
                                                                "owner": "weightslab-auth"}
    table = weightslab("config", "show", cwd=cwd, GRPC_TLS_CERT_DIR=str(certs))
    row = next(line for line in table.stdout.splitlines() if "GRPC_TLS_CA_FILE" in line)
    assert "derived from" in row and "unset" not in row


def test_config_show_names_the_token_file_when_no_token_variable_is_set(cwd: Path, tmp_path: Path) -> None:
    """After `weightslab certs init` the token file is the token every server accepts: `config show`
    says so (with a fingerprint, never the token) instead of "unset"."""
    pytest.importorskip("weightslab_auth")
    from weightslab_auth.settings import TOKEN_FILE_NAME

    certs = tmp_path / "certs"
    made = weightslab("certs", "init", "--dir", str(certs), cwd=cwd)
    assert made.returncode == 0, made.stderr
    token = (certs / TOKEN_FILE_NAME).read_text().strip()
    done = weightslab("config", "show", "--json", cwd=cwd, GRPC_TLS_CERT_DIR=str(certs))
    row = json.loads(done.stdout)["GRPC_AUTH_TOKEN"]
    assert row["source"] == f"token file {certs / TOKEN_FILE_NAME}"
    assert row["value"].startswith("fingerprint ") and token not in done.stdout
    explicit = weightslab("config", "show", "--json", cwd=cwd, GRPC_TLS_CERT_DIR=str(certs),
                          GRPC_AUTH_TOKEN="explicit-token-value-123")
    assert json.loads(explicit.stdout)["GRPC_AUTH_TOKEN"]["source"] == "env"
    table = weightslab("config", "show", cwd=cwd, GRPC_TLS_CERT_DIR=str(certs))
    line = next(line for line in table.stdout.splitlines()
                if "GRPC_AUTH_TOKEN" in line and "GRPC_AUTH_TOKENS" not in line)
    assert "fingerprint" in line and "unset" not in line
