"""Settings owned by weightslab-watchdog."""

from __future__ import annotations

from typing import Annotated

from weightslab.config import Setting, SettingsSection
from weightslab.config import fields as f


class WatchdogSettings(SettingsSection):
    section = "watchdog"
    owner = "weightslab-watchdog"

    disabled: Annotated[bool, Setting(
        "WEIGHTSLAB_DISABLE_WATCHDOGS", f.boolean, "Disable the watchdog threads.")] = False
    stuck_seconds: Annotated[float, Setting(
        "GRPC_WATCHDOG_STUCK_SECONDS", f.positive_seconds,
        "Seconds a lock or RPC must be held to count as stuck; also the handlers' lock timeout.")] = 60.0
    interval_seconds: Annotated[float, Setting(
        "GRPC_WATCHDOG_INTERVAL_SECONDS", f.positive_seconds, "Poll period.")] = 5.0
    restart_threshold: Annotated[int, Setting(
        "GRPC_WATCHDOG_RESTART_THRESHOLD", f.positive_int,
        "Consecutive unhealthy polls before a gRPC server restart.")] = 3
    inflight_details_limit: Annotated[int, Setting(
        "GRPC_WATCHDOG_INFLIGHT_DETAILS_LIMIT", f.non_negative_int,
        "Max in-flight RPC entries printed in a watchdog message.")] = 10
    exit_on_stuck: Annotated[bool, Setting(
        "GRPC_WATCHDOG_EXIT_ON_STUCK", f.boolean, "os._exit(1) instead of restarting.")] = False
