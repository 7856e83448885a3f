"""``weightslab demo``: the product in one command, on any machine, with no download.

Trains a small CNN on scikit-learn's bundled digits data set with a known fraction of
injected symmetric label noise, watched by WeightsLab (model, optimizer, per-sample loss,
accuracy metric, hyperparameters, train and validation loaders), serves the gRPC API
(TLS + mTLS + token, dev PKI created when absent) and the CLI server, then reports how well
the ``suspected_mislabel`` ranking finds the injected noise (AUROC, precision@k with k = the
number of noisy samples) and keeps serving until Ctrl+C (unless ``--exit-when-done``).

Needs ``torch`` and ``scikit-learn`` (the ``demo`` extra of ``weightslab``; part of ``all``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import numpy as np

log = logging.getLogger("weightslab.demo")

DEFAULT_EPOCHS = 10
DEFAULT_NOISE = 0.10
DEFAULT_LR = 0.003
DEFAULT_BATCH_SIZE = 32
N_CLASSES = 10


class DemoError(click.ClickException):
    pass


# -- data -------------------------------------------------------------------------------------------


@dataclass
class DigitsData:
    x_train: np.ndarray  # (n, 1, 8, 8) float32 in [0, 1]
    y_train: np.ndarray  # noisy labels (what the model sees)
    y_train_true: np.ndarray
    noisy: np.ndarray  # bool mask of injected noise
    x_val: np.ndarray
    y_val: np.ndarray


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: ``(images (n, 8, 8) in 0..16, targets)``.

    Reads the CSV that scikit-learn ships (what ``load_digits`` reads) without importing
    scikit-learn, whose import costs seconds; falls back to ``load_digits`` if the file moved.
    """
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(location) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            table = np.loadtxt(path, delimiter=",")
            if table.ndim == 2 and table.shape[1] == 65:
                return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images, digits.target.astype(np.int64)


def _stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(train indices, validation indices)`` with ``fraction`` of every class in validation."""
    val: list[np.ndarray] = []
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        val.append(idx[: int(round(fraction * len(idx)))])
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(len(y)), val_idx)
    return train_idx, val_idx


def load_noisy_digits(noise: float, seed: int, val_fraction: float = 0.2) -> DigitsData:
    """scikit-learn's digits (bundled, 1,797 8x8 images) with symmetric label noise on the
    training split: ``round(noise * n_train)`` labels replaced by a different class drawn uniformly."""
    images, y = _digits()
    x = (images.astype(np.float32) / 16.0)[:, None, :, :]
    rng = np.random.default_rng(seed)
    train_idx, val_idx = _stratified_split(y, val_fraction, rng)
    x_train, x_val, y_train, y_val = x[train_idx], x[val_idx], y[train_idx], y[val_idx]
    n_noisy = int(round(noise * len(y_train)))
    noisy = np.zeros(len(y_train), dtype=bool)
    noisy[rng.choice(len(y_train), size=n_noisy, replace=False)] = True
    y_noisy = y_train.copy()
    shift = rng.integers(1, N_CLASSES, size=n_noisy)  # never the true class
    y_noisy[noisy] = (y_train[noisy] + shift) % N_CLASSES
    return DigitsData(x_train, y_noisy, y_train, noisy, x_val, y_val)


def make_model() -> Any:
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, N_CLASSES),
    )


def accuracy(preds: Any, targets: Any) -> Any:
    """Per-sample correctness (1.0 / 0.0): a per-sample metric."""
    return (preds == targets).float()


# -- security set-up --------------------------------------------------------------------------------


@dataclass
class SecuritySetup:
    tls: bool = False
    cert_dir: Path | None = None
    created: bool = False
    token_file: Path | None = None
    token_fingerprint: str | None = None
    notes: list[str] = field(default_factory=list)


def prepare_security(environ: dict[str, str] | None = None) -> SecuritySetup:
    """Create the dev PKI when TLS is on and its files are missing; use its token when none is set.

    Sets ``GRPC_AUTH_TOKEN`` in this process's environment (the demo's own process only) so
    that both the gRPC and the CLI server require the token of ``<cert dir>/.grpc_auth_token``.
    """
    from weightslab.config import ConfigError, fingerprint
    from weightslab.settings import load_config

    env = os.environ if environ is None else environ
    try:
        config = load_config(validate=False)
    except ConfigError as exc:
        raise DemoError(str(exc)) from None
    setup = SecuritySetup()
    if "auth" not in config:
        setup.notes.append("weightslab-auth is not installed: serving without TLS or token on 127.0.0.1 only")
        return setup
    from weightslab_auth.pki import PKIError, PKIPaths, ensure_dev_pki, load_token
    from weightslab_auth.tls import DEFAULT_FILE_NAMES, resolve_tls_paths

    auth = config["auth"]
    cert_dir = Path(auth.cert_dir).expanduser()
    setup.cert_dir = cert_dir
    setup.tls = bool(auth.tls_enabled)
    paths = PKIPaths.of(cert_dir)
    if setup.tls:
        tls_paths = resolve_tls_paths(config)
        defaults = all(p.path == cert_dir / DEFAULT_FILE_NAMES[p.variable]
                       for p in (tls_paths.key, tls_paths.cert, tls_paths.ca))
        if defaults:
            missing = [p for p in (paths.ca_cert, paths.ca_key, paths.backend_cert, paths.backend_key,
                                   paths.token) if not p.is_file()]
            try:
                ensure_dev_pki(cert_dir)
            except (PKIError, OSError, ValueError) as exc:
                raise DemoError(f"cannot prepare the dev PKI in GRPC_TLS_CERT_DIR={cert_dir}: {exc}") from None
            setup.created = bool(missing)
            setup.notes.append(("created the dev PKI (CA, server/client certificates, token) in "
                                if missing else "using the dev PKI in ") + str(cert_dir))
        else:
            setup.notes.append("using the TLS files named by GRPC_TLS_KEY_FILE/CERT_FILE/CA_FILE")
    tokens = ([auth.auth_token] if auth.auth_token else []) + list(auth.auth_tokens)
    if tokens:
        setup.token_fingerprint = fingerprint(tokens[0])
        setup.notes.append(f"auth token from GRPC_AUTH_TOKEN(S) (fingerprint {setup.token_fingerprint})")
        return setup
    try:
        token = load_token(cert_dir)
    except PKIError as exc:
        setup.notes.append(f"no auth token ({exc}); serving on 127.0.0.1 without a token")
        return setup
    env["GRPC_AUTH_TOKEN"] = token
    setup.token_file = paths.token
    setup.token_fingerprint = fingerprint(token)
    setup.notes.append(f"auth token: {paths.token} (fingerprint {setup.token_fingerprint}); clients read it "
                       "from there or from GRPC_AUTH_TOKEN")
    return setup


# -- training -----------------------------------------------------------------------------------------


@dataclass
class DemoOptions:
    epochs: int = DEFAULT_EPOCHS
    noise: float = DEFAULT_NOISE
    seed: int = 0
    lr: float = DEFAULT_LR
    batch_size: int = DEFAULT_BATCH_SIZE
    root_log_dir: Path | None = None
    host: str = "127.0.0.1"
    grpc_port: int | None = None
    cli_port: int | None = None
    serve_grpc: bool = True
    serve_cli: bool = True
    discovery_file: Path | None = None
    top: int = 10


@dataclass
class DemoResult:
    summary: dict[str, Any]
    top: list[dict[str, Any]]


def _logs_to_stderr() -> None:
    """WeightsLab logs go to stderr in the demo: stdout carries the report (or the JSON)."""
    for handler in logging.getLogger("weightslab").handlers:
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stdout:
            handler.setStream(sys.stderr)


def free_port(host: str) -> int:
    """A port that is free on ``host`` right now (``--grpc-port 0`` / ``--cli-port 0``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _grpc_plugin_serves(pm: Any) -> bool:
    return any(impl.plugin_name == "grpc_server" for impl in pm.hook.weightslab_serve.get_hookimpls())


def run_demo(options: DemoOptions, *, progress: Callable[[int, int, int, int], None] | None = None,
             on_served: Callable[[dict[str, Any]], None] | None = None) -> DemoResult:
    """Train, serve and score. ``progress(epoch, epochs, batch, batches)`` after every batch."""
    import torch
    import weightslab as wl
    from weightslab.mislabel import auroc, precision_at_k

    torch.manual_seed(options.seed)
    data = load_noisy_digits(options.noise, options.seed)
    experiment = wl.get_experiment(root_log_dir=options.root_log_dir)
    with contextlib.redirect_stdout(sys.stderr):  # the logging handlers it configures write to stderr
        experiment.start()
    _logs_to_stderr()

    model = wl.watch_or_edit(make_model(), flag="model")
    hp = wl.watch_or_edit({"lr": options.lr, "batch_size": options.batch_size, "epochs": options.epochs},
                          flag="hp")
    optimizer = wl.watch_or_edit(torch.optim.Adam(model.parameters(), lr=float(hp.get("lr"))), flag="optimizer")
    criterion = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="loss")
    metric = wl.watch_or_edit(accuracy, flag="metric", name="accuracy")
    train_set = torch.utils.data.TensorDataset(torch.from_numpy(data.x_train), torch.from_numpy(data.y_train))
    val_set = torch.utils.data.TensorDataset(torch.from_numpy(data.x_val), torch.from_numpy(data.y_val))
    train_loader = wl.watch_or_edit(train_set, flag="data", loader_name="train", batch_size=int(hp.get("batch_size")),
                                    shuffle=True, seed=options.seed, labels=data.y_train)
    val_loader = wl.watch_or_edit(val_set, flag="data", loader_name="val", batch_size=256, is_training=False,
                                  labels=data.y_val)

    if experiment.evaluation is None:  # user-triggered evaluation passes (`weightslab cli eval val`)
        try:
            from weightslab.evaluation import attach
        except ImportError:
            pass
        else:
            attach(experiment)

    serve_kwargs: dict[str, Any] = {"cli_host": options.host, "grpc_host": options.host}
    if options.grpc_port is not None:
        serve_kwargs["grpc_port"] = options.grpc_port or free_port(options.host)
    if options.cli_port is not None:
        serve_kwargs["cli_port"] = options.cli_port or free_port(options.host)
    if options.discovery_file is not None:
        serve_kwargs["cli_discovery_file"] = options.discovery_file
    serve_grpc = options.serve_grpc and _grpc_plugin_serves(experiment.pm)
    if options.serve_grpc and not serve_grpc:
        log.warning("the gRPC server plugin is not installed: serving the CLI server only")
    services = wl.serve(serving_grpc=serve_grpc, serving_cli=options.serve_cli, **serve_kwargs) \
        if (serve_grpc or options.serve_cli) else {}
    served = {
        "grpc_port": getattr(services.get("grpc"), "port", None),
        "cli_port": getattr(services.get("cli"), "port", None),
        "discovery_file": str(getattr(services.get("cli"), "discovery_file", "") or "") or None,
    }
    if on_served is not None:
        on_served(served)

    started = time.perf_counter()
    epoch = 0
    while epoch < int(hp.get("epochs")):  # live: `hp set epochs 30` extends the run
        model.train()
        batches = max(len(train_loader), 1)
        for i, (x, ids, y) in enumerate(train_loader):
            optimizer.zero_grad()
            logits = model(x)
            losses = criterion(logits, y, batch_ids=ids)
            losses.mean().backward()
            optimizer.step()
            metric(logits.argmax(dim=1), y, batch_ids=ids)
            if progress is not None:
                progress(epoch, int(hp.get("epochs")), i + 1, batches)
        model.train(False)  # eval mode
        with wl.guard_testing_context:
            for x, ids, y in val_loader:
                logits = model(x)
                criterion(logits, y, batch_ids=ids)
                metric(logits.argmax(dim=1), y, batch_ids=ids)
        epoch += 1
    train_seconds = time.perf_counter() - started

    frame = experiment.frame()
    train_rows = np.flatnonzero(frame.split.astype(str) == "train")
    ids = np.array([int(s) for s in frame.sample_id[train_rows]], dtype=np.int64)
    scores = np.asarray(frame.columns["suspected_mislabel"], dtype=np.float64)[train_rows]
    truth = data.noisy[ids]
    k = max(int(data.noisy.sum()), 1)
    detection_auroc = auroc(scores, truth)
    p_at_k = precision_at_k(scores, truth, k)
    val_rows = np.flatnonzero(frame.split.astype(str) == "val")
    val_acc = float(np.nanmean(frame.columns["accuracy"][val_rows])) if "accuracy" in frame.columns else None

    order = np.argsort(-np.where(np.isnan(scores), -np.inf, scores), kind="stable")[: options.top]
    top = [{"sample_id": str(ids[i]), "given_label": int(data.y_train[ids[i]]),
            "true_label": int(data.y_train_true[ids[i]]), "injected": bool(truth[i]),
            "score": float(scores[i])} for i in order]
    summary = {
        "steps": int(experiment.step), "epochs": epoch, "samples": int(len(train_rows)),
        "val_samples": int(len(val_rows)), "noise": options.noise, "noisy_injected": int(data.noisy.sum()),
        "auroc": detection_auroc, "precision_at_k": p_at_k, "k": k, "val_accuracy": val_acc,
        "train_seconds": round(train_seconds, 3), "root_log_dir": str(experiment.root_log_dir),
        "seed": options.seed, **served,
    }
    return DemoResult(summary, top)


def default_demo_root(now: datetime | None = None) -> Path:
    """``WEIGHTSLAB_ROOT_LOG_DIR`` (environment or ``.env``) when set, else a fresh run directory
    ``~/.weightslab/demo/run-<time>-<pid>`` (a reused one would reload an earlier run's samples;
    and the README's ``pip install ... && weightslab demo`` must not litter the checkout)."""
    from weightslab.config import ConfigError
    from weightslab.settings import load_config

    try:
        configured = load_config(validate=False)["logging"].root_log_dir
    except ConfigError as exc:
        raise DemoError(str(exc)) from None
    if configured is not None:
        return Path(configured)
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return Path("~").expanduser() / ".weightslab" / "demo" / f"run-{stamp}-{os.getpid()}"


@dataclass
class StudioStart:
    """The Studio the demo started (``url``, ``handle``) or why it did not start (``problem``)."""

    url: str | None = None
    handle: Any = None
    problem: str | None = None


def start_studio(host: str, grpc_port: int | None) -> StudioStart:
    """Start ``weightslab studio`` in front of the demo's gRPC server; never raises: the reason
    it could not start (exactly what is missing) is in ``problem``."""
    try:
        from weightslab_studio.errors import StudioError
        from weightslab_studio.launcher import launch
    except ImportError as exc:
        return StudioStart(problem=f"weightslab-studio is not installed ({exc.name} is missing): "
                                   "pip install 'weightslab[studio]'")
    if not grpc_port:
        return StudioStart(problem="the gRPC server is not running (--no-grpc, or weightslab-grpc-server "
                                   "is not installed): the Studio talks to it")
    try:
        handle = launch(backend_host=host, backend_port=grpc_port)
    except StudioError as exc:
        return StudioStart(problem=str(exc))
    except ImportError as exc:
        return StudioStart(problem=f"the Studio needs {exc.name}, which is not installed")
    return StudioStart(url=handle.url, handle=handle)


def _install_sigterm() -> None:
    """Ctrl+C (SIGINT) and SIGTERM stop the demo cleanly with exit status 130, always: SIGINT is
    reset to Python's handler because a parent may have left it ignored (a background job), and
    an ignored SIGINT is inherited."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        pass


# -- the command -------------------------------------------------------------------------------------


@click.command("demo", help="Train a small CNN on scikit-learn's digits with injected label noise, "
                            "watched and served by WeightsLab, and report how well the noise is found.")
@click.option("--epochs", type=click.IntRange(min=1), default=DEFAULT_EPOCHS, show_default=True,
              help="Training epochs (live: `hp set epochs N`).")
@click.option("--noise", type=click.FloatRange(0.0, 0.9), default=DEFAULT_NOISE, show_default=True,
              help="Fraction of training labels replaced by a wrong class.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split, the noise and the model.")
@click.option("--root-log-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Root log dir (default WEIGHTSLAB_ROOT_LOG_DIR, else ~/.weightslab/demo/run-<time>-<pid>).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface of the gRPC and CLI servers (loopback by default).")
@click.option("--grpc-port", type=click.IntRange(0, 65535), default=None,
              help="gRPC port (default GRPC_BACKEND_PORT; 0 = any free port).")
@click.option("--cli-port", type=click.IntRange(0, 65535), default=None,
              help="CLI server port (default CLI_PORT; 0 = any free port).")
@click.option("--discovery-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where the CLI server advertises itself (default ~/.weightslab/cli/<pid>.json).")
@click.option("--no-grpc", is_flag=True, help="Do not serve the gRPC API.")
@click.option("--headless", is_flag=True, help="Do not launch the Studio.")
@click.option("--exit-when-done", is_flag=True, help="Exit after the report instead of serving until Ctrl+C.")
@click.option("--top", "top_n", type=click.IntRange(min=0), default=10, show_default=True,
              help="Suspected mislabels to list.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object on stdout (logs and progress go to stderr).")
def demo_command(epochs: int, noise: float, seed: int, root_log_dir: Path | None, host: str,
                 grpc_port: int | None, cli_port: int | None, discovery_file: Path | None, no_grpc: bool,
                 headless: bool, exit_when_done: bool, top_n: int, as_json: bool) -> None:
    from rich.console import Console
    from rich.markup import escape

    try:
        import torch

        if importlib.util.find_spec("sklearn") is None:
            raise ImportError("scikit-learn is not installed", name="scikit-learn")
        # A model this small gains nothing from intra-op threads; more threads only contend.
        torch.set_num_threads(1)
    except ImportError as exc:
        raise DemoError(f"the demo needs torch and scikit-learn ({exc.name} is missing): "
                        "pip install 'weightslab[demo]'") from None

    from weightslab_cli.console import make_console

    out = make_console(stderr=as_json, highlight=False)  # human output (stderr in --json mode), not cut in a pipe
    _install_sigterm()
    security = prepare_security()
    for note in security.notes:
        out.print(f"[bold]security:[/bold] {escape(note)}")
    options = DemoOptions(epochs=epochs, noise=noise, seed=seed, root_log_dir=root_log_dir or default_demo_root(),
                          host=host, grpc_port=grpc_port, cli_port=cli_port, serve_grpc=not no_grpc,
                          discovery_file=discovery_file, top=top_n)

    import weightslab as wl
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # One bar for the whole run (batches of every epoch), the epoch in its description: a bar per
    # epoch piled thousands of finished bars up on long runs and the live one scrolled out of view.
    progress_bar = Progress(TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True)
                            if as_json else out, transient=False, disable=as_json and not sys.stderr.isatty())
    run_task = progress_bar.add_task("train", total=None, epoch=1, epochs=epochs, start=False)

    def on_batch(epoch: int, total_epochs: int, batch: int, batches: int) -> None:
        progress_bar.start_task(run_task)  # idempotent; the clock starts with the first batch
        # total follows `hp set epochs N`: epochs x batches per epoch
        progress_bar.update(run_task, total=total_epochs * batches, completed=epoch * batches + batch,
                            epoch=epoch + 1, epochs=total_epochs)

    studio = StudioStart(problem="--headless")

    def on_served(served: dict[str, Any]) -> None:
        nonlocal studio
        parts = []
        if served.get("grpc_port"):
            parts.append(f"gRPC on {host}:{served['grpc_port']}" + (" (TLS + mTLS + token)" if security.tls else ""))
        if served.get("cli_port"):
            # the client finds this run by its discovery entry; an explicit file must be named
            flag = f"--discovery-file {discovery_file} " if discovery_file is not None else ""
            parts.append(f"CLI server on {host}:{served['cli_port']} — try `weightslab cli {flag}status`")
        for part in parts:
            out.print(f"[bold]serving:[/bold] {part}")
        if not headless:  # while training runs, so the grid fills live
            studio = start_studio(host, served.get("grpc_port"))
            if studio.handle is not None:  # stopped with the experiment's services, on every exit path
                wl.get_experiment().services["studio"] = studio.handle
                out.print(f"[bold]Studio:[/bold] {escape(studio.url or '')}", soft_wrap=True)
            else:
                out.print(f"[yellow]Studio not started:[/yellow] {escape(studio.problem or '')}; "
                          "use `weightslab cli`, or --headless to skip the Studio", soft_wrap=True)

    from weightslab.config import ConfigError

    from weightslab_cli.server import CliServerError

    try:
        with progress_bar:
            result = run_demo(options, progress=on_batch, on_served=on_served)
    except KeyboardInterrupt:
        wl.reset_experiment()
        raise SystemExit(130) from None
    except (ConfigError, CliServerError) as exc:
        wl.reset_experiment()
        raise DemoError(str(exc) + _port_hint(str(exc))) from None
    except Exception as exc:
        wl.reset_experiment()
        if type(exc).__name__ == "GrpcBindError":  # weightslab_grpc_server's clear bind error
            raise DemoError(str(exc) + _port_hint(str(exc))) from None
        from weightslab.store import StoreLockedError

        if isinstance(exc, StoreLockedError):  # another run holds the root log dir: one line, with the fix
            raise DemoError(str(exc)) from None
        raise
    summary = result.summary
    if not headless:
        summary["studio_url"] = studio.url
        summary["studio_problem"] = studio.problem
        if studio.url:
            out.print(f"[bold]Studio:[/bold] {escape(studio.url)}", soft_wrap=True)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        _print_report(out, summary, result.top)
    try:
        if not exit_when_done:
            out.print("Serving until Ctrl+C (`weightslab cli` to inspect, tag, discard, resume).")
            # not wl.keep_serving(): it returns normally on Ctrl+C, and the demo exits 130 then
            threading.Event().wait()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    finally:
        wl.reset_experiment()


def _port_hint(message: str) -> str:
    """A port already in use (another demo, another run): say how to take any free port."""
    if "in use" not in message and "EADDRINUSE" not in message:
        return ""
    return "; for the demo, --grpc-port 0 --cli-port 0 pick free ports"


def _print_report(console: Any, summary: dict[str, Any], top: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("sample id", "given (noisy) label", "true label", "injected", "score",
                  title=f"Top {len(top)} suspected mislabels")
    for row in top:
        table.add_row(row["sample_id"], str(row["given_label"]), str(row["true_label"]),
                      "yes" if row["injected"] else "no", f"{row['score']:.3f}")
    console.print(table)
    console.print(
        f"Detection of the {summary['noisy_injected']} injected noisy labels among {summary['samples']} training "
        f"samples: AUROC [bold]{summary['auroc']:.3f}[/bold], precision@{summary['k']} "
        f"[bold]{summary['precision_at_k']:.3f}[/bold]")
    val = summary.get("val_accuracy")
    console.print(f"{summary['steps']} steps, {summary['epochs']} epochs in {summary['train_seconds']:.1f}s"
                  + (f", validation accuracy {val:.3f}" if val is not None else "")
                  + f"; logs in {summary['root_log_dir']}")
