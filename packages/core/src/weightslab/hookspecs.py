"""Hook specifications. Every hook is prefixed ``weightslab_``; ``docs/plugins.md`` documents each.

Implementations may accept any subset of the documented arguments (pluggy passes only the ones
named; a name that is not in the spec is refused when the plugin registers). Built-in features
use the same hooks as third-party plugins. Argument and return types are the contract: concrete
classes or Protocols from :mod:`weightslab.contracts`, :mod:`weightslab.store` and
:mod:`weightslab.security`. A hook marked *first result* stops at the first implementation that
returns something other than ``None``; return ``None`` to pass to the next plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from weightslab.config import Config, SettingsSection
    from weightslab.contracts import CliCommand, GrpcInterceptor, Preview, QueryAgent, ServiceHandle
    from weightslab.experiment import Experiment
    from weightslab.security import ServerSecurity
    from weightslab.store import SampleStore

hookspec = pluggy.HookspecMarker("weightslab")
hookimpl = pluggy.HookimplMarker("weightslab")


# -- configuration -------------------------------------------------------------------------


@hookspec
def weightslab_config_sections() -> list[type[SettingsSection]]:  # type: ignore[empty-body]  # a spec has no body
    """Return the :class:`~weightslab.config.SettingsSection` subclasses this plugin owns.

    Example::

        @hookimpl
        def weightslab_config_sections():
            return [MySettings]
    """


@hookspec
def weightslab_configure(config: Config) -> None:
    """Validate the resolved :class:`~weightslab.config.Config` when services start.

    Raise :class:`~weightslab.config.ConfigError` with a message naming the variable.
    """


# -- lifecycle -----------------------------------------------------------------------------


@hookspec
def weightslab_experiment_started(experiment: Experiment) -> None:
    """The experiment exists and the config is resolved (``experiment.config``)."""


@hookspec
def weightslab_serve(experiment: Experiment, config: Config) -> ServiceHandle | None:
    """Start a service for ``experiment``; return a handle with ``stop()`` or ``None``.

    Publish the handle in ``experiment.services[name]`` too so that other plugins (e.g. the
    watchdog restarting the gRPC server) can find it; the experiment stops every published
    handle at shutdown.
    """


@hookspec
def weightslab_shutdown(experiment: Experiment) -> None:
    """The experiment is closing: flush and release resources."""


# -- serving -------------------------------------------------------------------------------


@hookspec(firstresult=True)
def weightslab_grpc_server_credentials(config: Config) -> object | None:
    """First result: ``grpc.ServerCredentials`` for the backend socket, or ``None`` for insecure."""


@hookspec(firstresult=True)
def weightslab_server_security(config: Config) -> ServerSecurity | None:
    """First result: a :class:`weightslab.security.ServerSecurity` (server TLS context, accepted
    tokens) for a server on its own socket; ``None`` lets another plugin answer (none answers:
    no TLS, no token)."""


@hookspec
def weightslab_grpc_interceptors(config: Config, experiment: Experiment) -> list[GrpcInterceptor]:  # type: ignore[empty-body]  # a spec has no body
    """Return ``grpc.ServerInterceptor`` objects (auth, audit, watchdog tracking); the lists of
    all plugins are concatenated in hook-call order (``tryfirst`` = outermost)."""


@hookspec
def weightslab_grpc_services(server: object, experiment: Experiment) -> None:
    """Add extra services to the ``grpc.Server`` (``server``) before it starts."""


# -- data ----------------------------------------------------------------------------------


@hookspec(firstresult=True)
def weightslab_sample_store(experiment: Experiment, config: Config) -> SampleStore | None:
    """First result: the persistent :class:`~weightslab.store.SampleStore` of ``experiment``
    (the core answers last with an in-memory store)."""


@hookspec(firstresult=True)
def weightslab_preview(sample: object, size: int, config: Config) -> Preview | None:
    """First result: a preview ``(bytes, mime_type)`` of ``sample`` with longest edge ``size``.

    ``sample`` is the dataset item (``experiment.load_sample``); ``size`` 0 means the configured
    default (``config`` is the experiment's Config). Return ``None`` for a sample this plugin
    cannot render so the next plugin may try.
    """


@hookspec
def weightslab_step_end(experiment: Experiment, step: int) -> None:
    """Called after every optimizer step of the watched training loop, on the training thread:
    return quickly (enqueue work, never block on I/O)."""


# -- agent and command line ----------------------------------------------------------------


@hookspec(firstresult=True)
def weightslab_query_agent(config: Config) -> QueryAgent | None:
    """First result: the natural-language :class:`~weightslab.contracts.QueryAgent`."""


@hookspec
def weightslab_cli_commands() -> list[CliCommand]:  # type: ignore[empty-body]  # a spec has no body
    """Return ``click`` commands added to the ``weightslab`` command (``weightslab <name>``)."""
