"""A new user's first hour with the CLI (issue 20): ids shared by splits, unknown names, empty
results and no-ops, discovery of several runs, a gRPC port mistaken for the CLI's, piped output,
and the demo's progress, suggested command and Ctrl+C. (Hyperparameter edits refused over the
CLI: test_first_hour_hp_cli.py.)"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from cli_testutil import LineClient, base_environ, empty_env_file, make_experiment
from weightslab import hookspecs
from weightslab.experiment import Experiment
from weightslab.hookspecs import hookimpl
from weightslab.operations import InvalidRequest, edits, samples
from weightslab_cli import plugin as cli_plugin
from weightslab_cli.commands import QUERY_HELP
from weightslab_cli.discovery import live_entries, write_discovery
from weightslab_cli.server import CliServer, CliServerError, start_cli_server

TIMEOUT = max(20.0, float(os.environ.get("WL_TEST_TIMEOUT", "30") or 30) - 5)


def weightslab(*args: str) -> list[str]:
    return [sys.executable, "-m", "weightslab_cli.main", *args]


def run_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GRPC_", "CLI_", "WEIGHTSLAB_", "WL_", "AUDIT_"))}
    env.update(base_environ(HOME=str(home), WEIGHTSLAB_ENV_FILE=str(empty_env_file())))
    env.update(extra)
    return env


def run(args: list[str], home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=run_env(home, **extra), capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL, cwd=home)


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def client(experiment: Experiment, serve: Callable[..., CliServer], connect: Any) -> LineClient:
    client: LineClient = connect(serve(experiment).port)
    return client


# -- item 3: ids held by several splits --------------------------------------------------------------


def test_an_id_in_several_splits_needs_a_split(client: LineClient, experiment: Experiment) -> None:
    reply = client.cmd("discard 5")
    assert reply["ok"] is False and "several splits (train, val)" in reply["error"] and "train:5" in reply["error"]
    assert not experiment.table.discarded[: experiment.table.n].any()  # nothing was discarded
    reply = client.cmd("discard 5 --split train")
    assert reply["ok"] and reply["matched"] == 1 and reply["samples"] == ["train:5"]
    reply = client.cmd("discard val:5")
    assert reply["ok"] and reply["samples"] == ["val:5"]
    assert client.cmd("discard 25")["samples"] == ["train:25"]  # only train has 25: no split needed
    # the same rule for every front end: the operation itself refuses (gRPC, SDK, agent call it)
    with pytest.raises(InvalidRequest, match="several splits"):
        edits.edit_samples(experiment, edits.EditRequest(action="tag", ids=("3",), tag="x"))


def test_discard_with_an_unknown_split_says_unknown_split(client: LineClient) -> None:
    reply = client.cmd("discard 1 2 3 --split tst")
    assert reply["ok"] is False
    assert "split='tst': unknown split; known splits: train, val" in reply["error"]


# -- item 7: empty results, unknown names, no-ops, extra arguments -----------------------------------


def test_unknown_splits_are_errors_and_unknown_tags_are_noted(client: LineClient) -> None:
    for command in ('query split == "tst"', "top loss 5 --split tst", 'tag x --query split == "tst"'):
        reply = client.cmd(command)
        assert reply["ok"] is False and "unknown split 'tst'" in reply["error"] and "train, val" in reply["error"]
    reply = client.cmd("query has:nosuch")
    assert reply["ok"] and reply["total"] == 0 and "no sample has tag 'nosuch'" in reply["notes"][0]
    reply = client.cmd("untag nosuch 1 --split train")
    assert reply["ok"] and reply["changed"] == 0 and "nothing to remove" in reply["note"]
    reply = client.cmd("discard --query has:nosuch")
    assert reply["ok"] and reply["matched"] == 0 and "no sample has tag 'nosuch'" in reply["note"]


def test_limit_zero_is_refused_alike_by_text_and_page(client: LineClient, experiment: Experiment) -> None:
    reply = client.cmd("query loss > 1 limit 0")
    assert reply["ok"] is False and "page.limit=0" in reply["error"]
    with pytest.raises(InvalidRequest, match="page.limit=0"):  # what gRPC's Page(limit=0) reaches
        samples.query_samples(experiment, samples.QuerySamplesRequest(query="loss > 1", limit=0))


def test_no_ops_say_so_and_extra_arguments_are_refused(client: LineClient, experiment: Experiment) -> None:
    from weightslab.evaluation import attach

    attach(experiment)
    assert "already running" in client.cmd("resume")["note"]
    assert client.cmd("pause")["ok"] and "already paused" in client.cmd("pause")["note"]
    reply = client.cmd("cancel_eval")
    assert reply["ok"] and reply["note"].startswith("nothing to cancel")
    reply = client.cmd("status --json")
    assert reply["ok"] is False and "takes no arguments" in reply["error"] and "weightslab cli --json status" in \
        reply["error"]
    assert client.cmd("eval_status now")["ok"] is False


def test_options_go_anywhere(client: LineClient, experiment: Experiment) -> None:
    reply = client.cmd("tag high --query loss > 3.5 --split train")
    assert reply["ok"] and reply["samples"] == ["train:36", "train:37", "train:38", "train:39"]
    reply = client.args("tag", "low", "--query", "loss < 0.15", "--split", "train")
    assert reply["ok"] and reply["samples"] == ["train:0", "train:1"]
    assert client.cmd("hist loss --query loss > 1 --bins 3")["ok"]
    assert "--bins='x'" in client.cmd("hist loss --query loss > 1 --bins x")["error"]  # the option was parsed


# -- item 4: the query grammar in `help query` -------------------------------------------------------


def test_help_query_shows_the_grammar_and_its_examples_run(client: LineClient) -> None:
    reply = client.cmd("help query")
    assert reply["ok"] and reply["details"] == QUERY_HELP and "sort by" in QUERY_HELP
    examples = [line.strip() for line in QUERY_HELP.split("Examples:")[1].splitlines()
                if line.strip().startswith("query ")]
    assert len(examples) >= 3
    client.cmd("tag noisy 3 --split train")
    for example in examples:
        assert client.cmd(example)["ok"], example


# -- item 8: one discovery entry per process -------------------------------------------------------------


def test_each_process_has_its_own_entry_and_several_live_runs_are_listed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    first = make_experiment(tmp_path / "a")
    second = make_experiment(tmp_path / "b")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # a second live process
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    try:
        server = start_cli_server(first)  # the default entry: ~/.weightslab/cli/<pid>.json
        own = home / ".weightslab" / "cli" / f"{os.getpid()}.json"
        assert json.loads(own.read_text())["port"] == server.port
        server_b = start_cli_server(second, discovery_file=False)
        info_b = {**server_b.discovery_info(), "pid": other.pid}
        write_discovery(home / ".weightslab" / "cli" / f"{other.pid}.json", info_b)
        stale = home / ".weightslab" / "cli" / f"{int(gone.stdout)}.json"
        write_discovery(stale, {**info_b, "pid": int(gone.stdout)})
        assert sorted(info["port"] for _, info in live_entries()) == sorted([server.port, server_b.port])
        assert not stale.exists()  # a dead process's entry is removed
        listed = run(weightslab("cli", "--list"), home)
        assert listed.returncode == 0 and str(other.pid) in listed.stdout and str(os.getpid()) in listed.stdout
        ambiguous = run(weightslab("cli", "status"), home)
        assert ambiguous.returncode == 1 and "2 runs serve a CLI server" in ambiguous.stderr
        assert "--discovery-file" in ambiguous.stderr and ambiguous.stdout == ""
        picked = run(weightslab("cli", "--discovery-file", str(own), "--json", "status"), home)
        assert picked.returncode == 0 and json.loads(picked.stdout)["ok"]
        server.stop()  # its entry goes with it; the one live run left is picked without asking
        assert not own.exists()
        alone = run(weightslab("cli", "--json", "status"), home)
        assert alone.returncode == 0 and json.loads(alone.stdout)["ok"], alone.stderr
        server_b.stop()
    finally:
        other.kill()
        other.wait()
        first.shutdown()
        second.shutdown()


# -- item 2: the gRPC port is not the CLI's ------------------------------------------------------------


def _grpc_experiment(tmp_path: Path, **env: str) -> Experiment:
    pytest.importorskip("weightslab_grpc_server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exp = make_experiment(tmp_path / "run", base_environ(GRPC_BACKEND_HOST="127.0.0.1", GRPC_BACKEND_PORT=str(port),
                                                         **env))
    exp.serve_options.update({"grpc": True})
    exp.pm.hook.weightslab_configure(config=exp.config)
    exp.pm.hook.weightslab_serve(experiment=exp, config=exp.config)
    return exp


@pytest.mark.parametrize("tls", [False, True])
def test_the_client_says_when_the_port_answers_grpc(tmp_path: Path, tls: bool) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env: dict[str, str] = {}
    if tls:
        pytest.importorskip("weightslab_auth")
        from weightslab_auth.pki import ensure_dev_pki

        ensure_dev_pki(tmp_path / "certs")
        env = {"GRPC_TLS_ENABLED": "1", "GRPC_TLS_CERT_DIR": str(tmp_path / "certs")}
    exp = _grpc_experiment(tmp_path, **env)
    try:
        out = run(weightslab("cli", "--port", str(exp.services["grpc"].port), "status"), home, **env)
        assert out.returncode == 1 and out.stdout == ""
        assert "answers gRPC (HTTP/2), not the WeightsLab CLI protocol" in out.stderr, out.stderr
        assert "serving_cli=True" in out.stderr and "wl.keep_serving()" in out.stderr
    finally:
        exp.shutdown()


# -- item 11 and 13: stderr, pipes, one quoted argument, CA path ------------------------------------


def test_piped_output_is_whole_and_errors_go_to_stderr(experiment: Experiment, serve: Callable[..., CliServer],
                                                       tmp_path: Path) -> None:
    port = str(serve(experiment).port)
    home = tmp_path / "home"
    home.mkdir()
    client = LineClient(int(port))
    client.cmd("tag a_rather_long_tag_name_that_would_not_fit_in_eighty_columns 1,2 --split train")
    client.close()
    out = run(weightslab("cli", "--port", port, "query loss > 0 and has:a_rather_long_tag_name_that_would_not_fit_"
                                                "in_eighty_columns"), home)  # one quoted argument
    assert out.returncode == 0, out.stderr
    assert "a_rather_long_tag_name_that_would_not_fit_in_eighty_columns" in out.stdout
    assert "…" not in out.stdout  # nothing cut to 80 columns
    empty = run(weightslab("cli", "--port", port, "query", "loss > 100"), home)
    assert empty.returncode == 0 and "0 of 50 rows match" in empty.stdout
    bad = run(weightslab("cli", "--port", port, "query", "los > 1"), home)
    assert bad.returncode == 1 and bad.stdout == "" and "error:" in bad.stderr and "loss" in bad.stderr


def test_config_show_in_a_pipe_is_not_cut(tmp_path: Path) -> None:
    long_dir = tmp_path / ("a_directory_name_long_enough_to_overflow_eighty_columns_" * 2)
    out = run(weightslab("config", "show"), tmp_path, WEIGHTSLAB_ROOT_LOG_DIR=str(long_dir))
    assert out.returncode == 0 and "…" not in out.stdout
    assert any("WEIGHTSLAB_ROOT_LOG_DIR" in line and str(long_dir) in line for line in out.stdout.splitlines())


def test_missing_ca_file_is_named(tmp_path: Path, experiment: Experiment, serve: Callable[..., CliServer]) -> None:
    pytest.importorskip("weightslab_auth")
    port = str(serve(experiment).port)
    out = run(weightslab("cli", "--port", port, "--ca", "/nonexist/ca.crt", "status"), tmp_path, GRPC_TLS_ENABLED="1")
    assert out.returncode == 1 and "CA file not found: /nonexist/ca.crt" in out.stderr


def test_evaluation_replies_are_formatted() -> None:
    from rich.console import Console
    from weightslab_cli.client import render

    console = Console(record=True, width=200)
    started = time.time() - 3.0
    render({"ok": True, "evaluation": {"state": "done", "split": "val", "progress": 1.0, "batches_done": 2,
                                       "batches_total": 2, "samples_done": 10, "samples_total": 10,
                                       "started": started, "finished": started + 2.5, "elapsed_seconds": 2.5,
                                       "metrics": {"loss": 0.25}, "message": ""}}, "eval_status", console)
    text = console.export_text()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
    assert stamp in text and "100%" in text and "2/2" in text and "metric loss" in text
    assert "{" not in text and str(started) not in text  # no raw JSON, no float epoch


# -- item 13: server-side messages ------------------------------------------------------------------------


def test_a_cli_port_in_use_says_how_to_take_a_free_one(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        exp = make_experiment(tmp_path / "run", base_environ(CLI_PORT=str(taken.getsockname()[1])))
        try:
            with pytest.raises(CliServerError, match="0 = any free port"):
                start_cli_server(exp, discovery_file=False)
        finally:
            exp.shutdown()


class _NoAgentPlugin:
    @hookimpl
    def weightslab_query_agent(self, config: Any) -> Any:
        return None  # installed, but not configured / not built


def test_an_installed_agent_plugin_that_builds_no_agent_is_not_called_missing(tmp_path: Path) -> None:
    from weightslab import _builtin

    pm = pluggy.PluginManager("weightslab")
    pm.add_hookspecs(hookspecs)
    pm.register(_builtin, name="core")
    pm.register(cli_plugin, name="cli")
    pm.register(_NoAgentPlugin(), name="agent")
    exp = make_experiment(tmp_path / "run", base_environ(), pm=pm)
    server = start_cli_server(exp, discovery_file=False)
    client = LineClient(server.port)
    try:
        error = client.cmd("ask which samples are mislabelled?")["error"]
        assert "installed (agent) but provides no query agent" in error and "not installed" not in error
    finally:
        client.close()
        server.stop()
        exp.shutdown()


def test_certs_init_prints_an_absolute_cert_dir(tmp_path: Path) -> None:
    pytest.importorskip("weightslab_auth")
    out = run(weightslab("certs", "init", "--dir", "./certs"), tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"GRPC_TLS_CERT_DIR={tmp_path.resolve() / 'certs'}" in out.stdout


# -- item 12 and 13: the demo -----------------------------------------------------------------------------


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    home, discovery = tmp_path / "home", tmp_path / "my-run.json"
    home.mkdir()
    stdout = tmp_path / "demo.out"
    with stdout.open("w") as sink:
        proc = subprocess.Popen(weightslab("demo", "--headless", "--epochs", "3", "--grpc-port", "0", "--cli-port",
                                           "0", "--root-log-dir", str(tmp_path / "run"), "--discovery-file",
                                           str(discovery)),
                                env={**run_env(home), "PYTHONUNBUFFERED": "1"}, stdout=sink,
                                stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        yield proc, stdout, discovery
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_demo_one_progress_bar_suggested_command_and_ctrl_c_after_the_report(
        demo: tuple[subprocess.Popen[str], Path, Path], tmp_path: Path) -> None:
    proc, stdout, discovery = demo

    def served() -> bool:
        assert proc.poll() is None, stdout.read_text()[-3000:]
        return "Serving until Ctrl+C" in stdout.read_text()

    wait_for(served, "the demo's report")
    text = stdout.read_text()
    assert f"try `weightslab cli --discovery-file {discovery} status`" in text
    bars = re.findall(r"epoch (\d+)/(\d+)", text)
    assert bars and len(set(bars)) == 1 and bars[-1] == ("3", "3"), bars  # one bar for the run, at its last epoch
    started = run(weightslab("cli", "--discovery-file", str(discovery), "eval", "val"), tmp_path / "home")
    assert started.returncode == 0, started.stderr

    def finished() -> str | None:
        out = run(weightslab("cli", "--discovery-file", str(discovery), "eval_status"), tmp_path / "home")
        return out.stdout if " done " in out.stdout else None

    status = wait_for(finished, "the evaluation pass")
    assert re.search(r"started\W+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", status) and "{" not in status
    proc.send_signal(signal.SIGINT)
    assert proc.wait(TIMEOUT) == 130  # as the README says
