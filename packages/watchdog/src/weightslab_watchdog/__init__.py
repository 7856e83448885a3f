"""Lock monitor and interrupt, in-flight RPC tracking, restart / exit-on-stuck policy.

Importing the package is cheap (no grpc import); the public names load on first access.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from weightslab_watchdog.interrupt import _WatchdogInterrupt as _WatchdogInterrupt

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "InflightCall": "weightslab_watchdog.inflight",
    "InflightTracker": "weightslab_watchdog.inflight",
    "LockCheck": "weightslab_watchdog.lock_monitor",
    "LockMonitor": "weightslab_watchdog.lock_monitor",
    "RpcCheck": "weightslab_watchdog.rpc_monitor",
    "RpcMonitor": "weightslab_watchdog.rpc_monitor",
    "PollResult": "weightslab_watchdog.service",
    "WatchdogService": "weightslab_watchdog.service",
    "get_inflight_tracker": "weightslab_watchdog.service",
    "start_watchdog": "weightslab_watchdog.service",
    "stop_watchdog": "weightslab_watchdog.service",
    "WatchdogSettings": "weightslab_watchdog.settings",
}

__all__ = sorted([*_EXPORTS, "_WatchdogInterrupt"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'weightslab_watchdog' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
