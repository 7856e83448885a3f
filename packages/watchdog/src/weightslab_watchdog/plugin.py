"""Hook implementations of weightslab-watchdog."""

from __future__ import annotations

from typing import Any

from weightslab.hookspecs import hookimpl


@hookimpl
def weightslab_config_sections() -> list[Any]:
    from weightslab_watchdog.settings import WatchdogSettings

    return [WatchdogSettings]


@hookimpl
def weightslab_grpc_interceptors(config: Any, experiment: Any) -> list[Any]:
    """The experiment's shared in-flight tracker; nothing when the watchdog is disabled."""
    from weightslab_watchdog.service import get_inflight_tracker, watchdog_settings

    if watchdog_settings(config, experiment).disabled:
        return []
    return [get_inflight_tracker(experiment)]


@hookimpl(trylast=True)
def weightslab_serve(experiment: Any, config: Any) -> Any:
    """Start the watchdog thread after the other services (the gRPC server is in ``services``)."""
    from weightslab_watchdog.service import start_watchdog

    return start_watchdog(experiment, config)


@hookimpl
def weightslab_shutdown(experiment: Any) -> None:
    from weightslab_watchdog.service import stop_watchdog

    stop_watchdog(experiment)
