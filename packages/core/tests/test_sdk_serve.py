"""``wl.serve``: all or nothing. A service that fails to start stops every service started by the
same call (no half-served process), and asking for a service whose plugin is missing says what
to install. Real listening sockets on 127.0.0.1:0 stand for the services."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from weightslab.hookspecs import hookimpl

ALL_PLUGINS = "data_cache,grpc_server,cli,watchdog,auth,agent,studio,example"


class Listener:
    """A real service: a socket listening on 127.0.0.1:0 until ``stop()``."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        self.sock.close()


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


class StartsA:
    def __init__(self) -> None:
        self.handle: Listener | None = None

    @hookimpl
    def weightslab_serve(self, experiment: Any, config: Any) -> Any:
        self.handle = experiment.services["a"] = Listener()
        return self.handle


class Fails:
    @hookimpl(trylast=True)  # after the plugin that started a service
    def weightslab_serve(self, experiment: Any, config: Any) -> Any:
        raise OSError("CLI_PORT=1234: address already in use")


@pytest.fixture
def core_only(wl: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The SDK's experiment with a plugin manager of its own holding only the core (the
    process-wide manager may have loaded every installed plugin already)."""
    from weightslab import sdk
    from weightslab.experiment import Experiment
    from weightslab.plugins import create_plugin_manager

    environ = {"WEIGHTSLAB_DISABLED_PLUGINS": ALL_PLUGINS, "WEIGHTSLAB_LOG_LEVEL": "WARNING"}
    experiment = Experiment(kwargs={"root_log_dir": tmp_path / "core-only"}, environ=environ,
                            pm=create_plugin_manager(environ))
    monkeypatch.setattr(sdk, "_experiment", experiment)
    return wl


def test_a_failing_service_stops_the_ones_started_by_the_same_call(core_only: Any) -> None:
    wl = core_only
    exp = wl.get_experiment()
    earlier = Listener()  # started by an earlier serve call: must survive
    exp.services["earlier"] = earlier
    starts_a, fails = StartsA(), Fails()
    exp.pm.register(starts_a, name="starts_a")
    exp.pm.register(fails, name="fails")
    order = [impl.plugin_name for impl in reversed(exp.pm.hook.weightslab_serve.get_hookimpls())]
    assert order.index("starts_a") < order.index("fails"), order  # pluggy's call order

    try:
        with pytest.raises(OSError, match="CLI_PORT=1234: address already in use"):
            wl.serve()
    finally:  # the plugin manager may be shared by later experiments
        exp.pm.unregister(name="fails")
        exp.pm.unregister(name="starts_a")
    assert starts_a.handle is not None and starts_a.handle.stopped
    assert not accepts(starts_a.handle.port)  # really closed: nothing half-served
    assert "a" not in exp.services
    assert exp.services["earlier"] is earlier and accepts(earlier.port)
    earlier.stop()


def test_asking_for_a_service_whose_plugin_is_missing_says_what_to_install(core_only: Any) -> None:
    wl = core_only
    with pytest.raises(RuntimeError, match=r"no gRPC server plugin is installed: pip install 'weightslab\[grpc\]'"):
        wl.serve(serving_grpc=True)
    with pytest.raises(RuntimeError, match=r"the CLI plugin is not installed: pip install 'weightslab\[cli\]'"):
        wl.serve(serving_cli=True)
