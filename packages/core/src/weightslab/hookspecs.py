"""Hook specifications. Every hook is prefixed ``weightslab_``.

Implementations may accept any subset of the documented arguments (pluggy passes only
the ones named). Built-in features use the same hooks as third-party plugins.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("weightslab")
hookimpl = pluggy.HookimplMarker("weightslab")


@hookspec
def weightslab_config_sections() -> Any:
    """Return a list of :class:`~weightslab.config.SettingsSection` subclasses this plugin owns.

    Example::

        @hookimpl
        def weightslab_config_sections():
            return [MySettings]
    """


@hookspec
def weightslab_configure(config: Any) -> None:
    """Validate the resolved :class:`~weightslab.config.Config` at start-up.

    Raise :class:`~weightslab.config.ConfigError` with a message naming the variable.
    """


@hookspec
def weightslab_experiment_started(experiment: Any) -> None:
    """The experiment exists and the config is resolved (``experiment.config``)."""


@hookspec
def weightslab_serve(experiment: Any, config: Any) -> Any:
    """Start a service for ``experiment``; return a handle with ``stop()`` or ``None``.

    Handles are also published in ``experiment.services[name]`` so that other plugins
    (e.g. the watchdog restarting the gRPC server) can find them.
    """


@hookspec
def weightslab_shutdown(experiment: Any) -> None:
    """The experiment is closing: flush and release resources."""


@hookspec(firstresult=True)
def weightslab_grpc_server_credentials(config: Any) -> Any:
    """Return ``grpc.ServerCredentials`` for the backend socket, or ``None`` for insecure."""


@hookspec(firstresult=True)
def weightslab_server_security(config: Any) -> Any:
    """Return a :class:`weightslab.security.ServerSecurity` (TLS context, accepted tokens) for a
    server on its own socket, or ``None`` to let another plugin answer (none: no TLS, no token)."""


@hookspec
def weightslab_grpc_interceptors(config: Any, experiment: Any) -> Any:
    """Return a list of ``grpc.ServerInterceptor`` (auth, audit, watchdog tracking)."""


@hookspec
def weightslab_grpc_services(server: Any, experiment: Any) -> None:
    """Add extra services to the ``grpc.Server`` before it starts."""


@hookspec(firstresult=True)
def weightslab_sample_store(experiment: Any, config: Any) -> Any:
    """Return the persistent sample store of ``experiment`` (core falls back to memory)."""


@hookspec(firstresult=True)
def weightslab_preview(sample: Any, size: int, config: Any) -> Any:
    """Return a preview ``(bytes, mime_type)`` of ``sample`` with longest edge ``size``.

    ``size`` 0 means the configured default (``config`` is the experiment's Config);
    return ``None`` for a sample this plugin cannot render so another plugin may try.
    """


@hookspec
def weightslab_step_end(experiment: Any, step: int) -> None:
    """Called after every optimizer step of the watched training loop."""


@hookspec(firstresult=True)
def weightslab_query_agent(config: Any) -> Any:
    """Return the natural-language query agent."""


@hookspec
def weightslab_cli_commands() -> Any:
    """Return a list of ``click`` commands added to the ``weightslab`` command."""
