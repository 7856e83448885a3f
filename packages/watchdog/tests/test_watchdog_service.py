"""The service thread, the plugin hooks, every setting, and exit-on-stuck in a subprocess."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pluggy
import pytest
import weightslab_watchdog
from watchdog_testutil import make_experiment, wait_until, watchdog_config, watchdog_settings
from weightslab import hookspecs
from weightslab.config import ConfigError
from weightslab_watchdog import plugin
from weightslab_watchdog.inflight import InflightTracker
from weightslab_watchdog.rpc_monitor import RpcCheck
from weightslab_watchdog.service import INFLIGHT_KEY, THREAD_NAME, WatchdogService, get_inflight_tracker

HERE = Path(__file__).resolve().parent


def _watchdog_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == THREAD_NAME]


def _plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("weightslab")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name="watchdog")  # validates the hook signatures against the specs
    return pm


def test_settings_resolve_from_variables() -> None:
    settings = watchdog_settings(
        WEIGHTSLAB_DISABLE_WATCHDOGS="yes", GRPC_WATCHDOG_STUCK_SECONDS="1.5",
        GRPC_WATCHDOG_INTERVAL_SECONDS="0.25", GRPC_WATCHDOG_RESTART_THRESHOLD="4",
        GRPC_WATCHDOG_INFLIGHT_DETAILS_LIMIT="0", GRPC_WATCHDOG_EXIT_ON_STUCK="on")
    assert (settings.disabled, settings.stuck_seconds, settings.interval_seconds, settings.restart_threshold,
            settings.inflight_details_limit, settings.exit_on_stuck) == (True, 1.5, 0.25, 4, 0, True)
    defaults = watchdog_settings()
    assert (defaults.disabled, defaults.stuck_seconds, defaults.interval_seconds, defaults.restart_threshold,
            defaults.inflight_details_limit, defaults.exit_on_stuck) == (False, 60.0, 5.0, 3, 10, False)
    with pytest.raises(ConfigError, match="GRPC_WATCHDOG_RESTART_THRESHOLD"):
        watchdog_config(GRPC_WATCHDOG_RESTART_THRESHOLD="0")


def test_thread_polls_every_interval_and_stops() -> None:
    experiment = make_experiment(watchdog_config(GRPC_WATCHDOG_INTERVAL_SECONDS=0.01))
    service = WatchdogService(experiment, experiment.config["watchdog"]).start()
    try:
        [thread] = _watchdog_threads()
        assert thread.daemon and service.running
        wait_until(lambda: service.polls >= 5, what="5 polls of the thread")
    finally:
        service.stop()
    assert not service.running and not _watchdog_threads()


def test_stop_is_immediate_with_a_long_interval() -> None:
    experiment = make_experiment(watchdog_config(GRPC_WATCHDOG_INTERVAL_SECONDS=60))
    service = WatchdogService(experiment, experiment.config["watchdog"]).start()
    assert service.running
    started = time.monotonic()
    service.stop()
    assert time.monotonic() - started < 2
    assert service.polls == 0 and not _watchdog_threads()


def test_plugin_hooks_share_one_tracker_and_run_one_thread() -> None:
    pm = _plugin_manager()
    serve_impl = next(impl for impl in pm.hook.weightslab_serve.get_hookimpls()
                      if impl.plugin_name == "watchdog")
    assert serve_impl.trylast
    experiment = make_experiment(watchdog_config(GRPC_WATCHDOG_INTERVAL_SECONDS=0.01))
    [interceptors] = pm.hook.weightslab_grpc_interceptors(config=experiment.config, experiment=experiment)
    [again] = pm.hook.weightslab_grpc_interceptors(config=experiment.config, experiment=experiment)
    [tracker] = interceptors
    assert isinstance(tracker, InflightTracker) and again == [tracker]
    assert get_inflight_tracker(experiment) is tracker
    [service] = pm.hook.weightslab_serve(experiment=experiment, config=experiment.config)
    try:
        assert isinstance(service, WatchdogService) and service.tracker is tracker
        assert experiment.services["watchdog"] is service
        assert pm.hook.weightslab_serve(experiment=experiment, config=experiment.config) == [service]
        assert len(_watchdog_threads()) == 1
        wait_until(lambda: service.polls >= 2, what="polls")
    finally:
        pm.hook.weightslab_shutdown(experiment=experiment)
    assert not service.running and not _watchdog_threads()
    assert "watchdog" not in experiment.services


def test_disabled_starts_no_thread_and_installs_no_interceptor(logs) -> None:
    pm = _plugin_manager()
    experiment = make_experiment(watchdog_config(WEIGHTSLAB_DISABLE_WATCHDOGS=1,
                                                 GRPC_WATCHDOG_INTERVAL_SECONDS=0.01))
    before = set(threading.enumerate())
    assert pm.hook.weightslab_grpc_interceptors(config=experiment.config, experiment=experiment) == [[]]
    assert pm.hook.weightslab_serve(experiment=experiment, config=experiment.config) == []
    # no new thread (threads of other tests may end meanwhile: only additions count)
    assert set(threading.enumerate()) - before == set()
    assert not _watchdog_threads() and "watchdog" not in experiment.services
    disabled = [r for r in logs.records if "watchdog disabled" in r.getMessage()]
    assert len(disabled) == 1 and disabled[0].levelno == logging.WARNING
    pm.hook.weightslab_shutdown(experiment=experiment)  # nothing to stop, no error


def test_public_api_is_reexported() -> None:
    assert issubclass(weightslab_watchdog._WatchdogInterrupt, BaseException)
    assert not issubclass(weightslab_watchdog._WatchdogInterrupt, Exception)
    assert weightslab_watchdog.WatchdogService is WatchdogService
    assert weightslab_watchdog.InflightTracker is InflightTracker


def test_restart_without_a_grpc_handle_is_reported_not_raised(logs) -> None:
    experiment = make_experiment(watchdog_config(GRPC_WATCHDOG_STUCK_SECONDS=0.01,
                                                 GRPC_WATCHDOG_RESTART_THRESHOLD=1))
    service = WatchdogService(experiment, experiment.config["watchdog"])
    token = service.tracker.begin("/x.Y/Z", "ipv4:127.0.0.1:1")
    wait_until(lambda: service.tracker.snapshot()[0].age() > 0.01, what="age")
    assert service.poll_once().rpc.action == "restart_unavailable"
    assert logs.messages(logging.ERROR, "no 'grpc' handle")
    service.tracker.end(token)
    assert service.poll_once().rpc.healthy


def test_without_a_grpc_server_no_tracker_exists_until_one_is_installed() -> None:
    """The RPC monitor finds the shared tracker when the gRPC server's interceptor hook creates it
    (after the watchdog started, too); before that nothing is in flight and none is created."""
    experiment = make_experiment(watchdog_config(GRPC_WATCHDOG_STUCK_SECONDS=0.01,
                                                 GRPC_WATCHDOG_RESTART_THRESHOLD=5))
    service = WatchdogService(experiment, experiment.config["watchdog"])
    assert service.poll_once().rpc == RpcCheck(True, 0)
    assert INFLIGHT_KEY not in experiment.services and service.rpc_monitor.tracker is None
    [[tracker]] = _plugin_manager().hook.weightslab_grpc_interceptors(config=experiment.config,
                                                                      experiment=experiment)
    assert service.rpc_monitor.tracker is tracker and service.tracker is tracker
    tracker.begin("/x.Y/Z")
    wait_until(lambda: tracker.snapshot()[0].age() > 0.01, what="age")
    rpc = service.poll_once().rpc
    assert (rpc.healthy, rpc.inflight, rpc.consecutive_unhealthy) == (False, 1, 1)


NO_GRPC_SCRIPT = textwrap.dedent("""
    import sys, types
    import pluggy
    from weightslab import hookspecs
    from weightslab.config import resolve
    from weightslab.lock import WeightsLabRLock
    from weightslab_watchdog import plugin
    from weightslab_watchdog.settings import WatchdogSettings

    pm = pluggy.PluginManager("weightslab")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name="watchdog")
    for disabled in ("1", "0"):  # (watchdog_testutil imports grpc: not used here)
        config = resolve([WatchdogSettings], environ={"WEIGHTSLAB_DISABLE_WATCHDOGS": disabled}, env_file=None)
        experiment = types.SimpleNamespace(lock=WeightsLabRLock(), config=config, services={})
        [service] = pm.hook.weightslab_serve(experiment=experiment, config=experiment.config) or [None]
        assert (service is None) == (disabled == "1")
        if service is not None:
            assert service.running and service.poll_once().rpc.healthy
        pm.hook.weightslab_shutdown(experiment=experiment)
    assert "grpc" not in sys.modules, "the watchdog loaded grpc without a gRPC server"
    print("ok")
""")


def test_watchdog_without_a_grpc_server_does_not_import_grpc() -> None:
    """A fresh interpreter: grpc loads with the first tracker, i.e. with a gRPC server only."""
    done = subprocess.run([sys.executable, "-c", NO_GRPC_SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "ok"


def test_exit_on_stuck_flag_with_stubbed_exit_flushes_then_exits() -> None:
    experiment = make_experiment(watchdog_config(GRPC_WATCHDOG_STUCK_SECONDS=0.01,
                                                 GRPC_WATCHDOG_RESTART_THRESHOLD=2,
                                                 GRPC_WATCHDOG_EXIT_ON_STUCK=1))
    exits: list[int] = []
    service = WatchdogService(experiment, experiment.config["watchdog"], exit_func=exits.append)
    service.tracker.begin("/x.Y/Z")
    wait_until(lambda: service.tracker.snapshot()[0].age() > 0.01, what="age")
    assert service.poll_once().rpc.action == "none" and exits == []
    assert service.poll_once().rpc.action == "exit"
    assert exits == [1] and experiment.store.flushes == 1


EXIT_SCRIPT = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    import grpc
    from weightslab.log import configure_logging
    from weightslab.config import resolve
    from weightslab_watchdog.settings import WatchdogSettings
    from weightslab_watchdog.service import get_inflight_tracker, start_watchdog
    from watchdog_testutil import MarkerStore, ServerHandle, Servicer, channel, make_experiment, method

    configure_logging("INFO")
    config = resolve([WatchdogSettings], env_file=None)  # from the real os.environ
    experiment = make_experiment(config, MarkerStore(Path(sys.argv[1]), fail=sys.argv[2] == "fail"))
    servicer = Servicer(experiment.lock)
    experiment.services["grpc"] = ServerHandle(servicer, [get_inflight_tracker(experiment)])
    service = start_watchdog(experiment, config)
    call = method(channel(experiment.services["grpc"].port), "Block").future(b"", timeout=60)
    threading.Event().wait(20)  # the watchdog must end the process long before this
    print("still alive", flush=True)
    sys.exit(3)
""")


@pytest.mark.parametrize("flush", ["ok", "fail"])
def test_exit_on_stuck_exits_the_process_with_status_1(tmp_path, flush) -> None:
    script = tmp_path / "stuck.py"
    script.write_text(EXIT_SCRIPT)
    marker = tmp_path / "flushed.marker"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
           "GRPC_WATCHDOG_EXIT_ON_STUCK": "1", "GRPC_WATCHDOG_STUCK_SECONDS": "0.05",
           "GRPC_WATCHDOG_INTERVAL_SECONDS": "0.02", "GRPC_WATCHDOG_RESTART_THRESHOLD": "2",
           "WEIGHTSLAB_DISABLE_WATCHDOGS": "0"}
    done = subprocess.run([sys.executable, str(script), str(marker), flush], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=25)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "still alive" not in done.stdout
    assert "GRPC_WATCHDOG_EXIT_ON_STUCK=1: flushing the store and exiting with status 1" in done.stdout
    assert "WATCHDOG" in done.stdout
    if flush == "ok":
        assert marker.read_text() == "flushed"
    else:
        assert not marker.exists()
        assert "store flush before exit failed: OSError: disk on fire" in done.stdout
