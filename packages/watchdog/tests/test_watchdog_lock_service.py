"""The lock watchdog through the path a real run takes: a real Experiment, the plugin's serve hook
(as ``wl.serve`` calls it), the service's own polling thread — no monitor built by hand."""

from __future__ import annotations

from test_watchdog_lock import SpinningHolder
from weightslab.experiment import Experiment
from weightslab.log import WATCHDOG
from weightslab_watchdog import plugin

ENV = {"GRPC_WATCHDOG_STUCK_SECONDS": "0.2", "GRPC_WATCHDOG_INTERVAL_SECONDS": "0.02",
       "WEIGHTSLAB_DISABLED_PLUGINS": "grpc_server,cli,data_cache,auth,agent,studio,example",
       "WEIGHTSLAB_LOG_LEVEL": "WARNING"}


def test_the_served_watchdog_interrupts_a_stuck_holder_of_the_experiment_lock(tmp_path, logs) -> None:
    exp = Experiment(kwargs={"root_log_dir": tmp_path}, environ=ENV)
    exp.start()
    service = plugin.weightslab_serve(experiment=exp, config=exp.config)
    try:
        assert service is not None and exp.services["watchdog"] is service
        holder = SpinningHolder(exp.lock, name="stuck-train-loop").start()
        try:
            assert holder.caught_event.wait(10), "the watchdog thread never interrupted the stuck holder"
            assert holder.finally_ran.wait(10) and holder.escaped is None
            holder.thread.join(10)
            assert exp.lock.holder() is None  # released by the interrupted holder
        finally:
            holder.finish()
    finally:
        plugin.weightslab_shutdown(experiment=exp)
        exp.shutdown()
    assert "watchdog" not in exp.services
    assert any("stuck-train-loop" in m for m in logs.messages(WATCHDOG, "delivering _WatchdogInterrupt"))
