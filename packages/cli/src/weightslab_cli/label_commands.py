"""Label corrections over the CLI server (``relabel``, ``revert_label``, ``export_labels``) and the
``weightslab export labels`` command, which asks a running experiment's CLI server for every
correction and writes it locally as CSV or JSON (id, split, original, corrected, by, at).

Thin adapters over :mod:`weightslab.operations.labels` (the operation the SDK and gRPC call).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from weightslab.operations import labels

from weightslab_cli.commands import AUDIT_ACTIONS, CommandContext, CommandError, _ids, _options, command
from weightslab_cli.protocol import Request, split_query_option

RELABEL_USAGE = "usage: relabel <label|suggested> <ids|--query q> [--split s]"
REVERT_USAGE = "usage: revert_label <ids|--query q> [--split s]"
AUDIT_ACTIONS.update({"relabel": "relabel_samples", "revert_label": "relabel_samples"})


def _target(req: Request) -> tuple[list[str], str | None, str]:
    """Positional arguments, the ``--query`` text (last) and ``--split``."""
    before, query = split_query_option(req.rest, req.args)
    positional, options = _options(before, {"split": True})
    return positional, query, options.get("split", "")


def _run(ctx: CommandContext, action: str, ids: list[str], query: str | None, split: str, label: Any,
         usage: str) -> dict[str, Any]:
    if (query is None) == (not ids):
        raise CommandError(usage + " (give sample ids or --query, not both)")
    if query is not None and not query.strip():
        raise CommandError(f"{action}: --query needs a query text")
    result = labels.relabel_samples(ctx.experiment, labels.RelabelRequest(
        action=action, ids=tuple(ids) if ids else None, query=query, split=split, label=label), ctx.mutating())
    out = {"action": action, "matched": result.matched, "changed": result.changed,
           "sample_ids": list(result.sample_ids), "samples": list(result.samples)}
    if action == "relabel_to_suggestion":
        out["without_suggestion"] = result.without_suggestion
    return out


@command("relabel", "relabel <label|suggested> <ids|--query q> [--split s]",
         "Correct the class label of samples (by ids or query); `suggested` sets each sample's "
         "suggested_label. Training uses it from the next batch on; the original stays in original_label.",
         mutating=True)
def _relabel(ctx: CommandContext, req: Request) -> dict[str, Any]:
    positional, query, split = _target(req)
    if not positional:
        raise CommandError(RELABEL_USAGE)
    label_text = positional.pop(0)
    if label_text.lower() in ("suggested", "suggestion"):
        return _run(ctx, "relabel_to_suggestion", _ids(positional), query, split, None, RELABEL_USAGE)
    return _run(ctx, "relabel", _ids(positional), query, split, label_text, RELABEL_USAGE)


@command("revert_label", "revert_label <ids|--query q> [--split s]",
         "Give corrected samples their original label back.", mutating=True)
def _revert_label(ctx: CommandContext, req: Request) -> dict[str, Any]:
    positional, query, split = _target(req)
    return _run(ctx, "revert_label", _ids(positional), query, split, None, REVERT_USAGE)


@command("export_labels", "export_labels [--split s]",
         "Every corrected label: id, split, original, corrected, by, at (`weightslab export labels` writes a file).")
def _export_labels(ctx: CommandContext, req: Request) -> dict[str, Any]:
    positional, options = _options(req.rest, {"split": True}, req.args)
    if positional:
        raise CommandError("usage: export_labels [--split s]")
    result = labels.export_labels(ctx.experiment, labels.ExportLabelsRequest(split=options.get("split", "")))
    return {"labels": result.rows()}


# -- `weightslab export labels` ----------------------------------------------------------------


@click.group("export", help="Export from a running experiment (through its CLI server).")
def export_group() -> None:
    pass


@export_group.command("labels", help="Write every corrected label (id, split, original, corrected, by, at) "
                                     "as CSV or JSON, for the annotation pipeline.")
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("labels.csv"), show_default=True,
              help="File to write (a folder gets labels.<format>).")
@click.option("--format", "fmt", type=click.Choice(labels.EXPORT_FORMATS), default=None,
              help="csv or json (default: from --out's suffix, else csv).")
@click.option("--split", default="", help="Only this split.")
@click.option("--host", default=None, help="Server host (default: from the discovery file, else CLI_HOST).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Server port.")
@click.option("--discovery-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Discovery file written by the server.")
@click.option("--pid", type=click.IntRange(min=1), default=None,
              help="The live run of this process (see `weightslab cli --list`), when several serve a CLI server.")
@click.option("--ca", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CA certificate verifying the server.")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Client certificate (PEM) for a server that requires one.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Private key of --cert (PEM).")
def export_labels_command(out: Path, fmt: str | None, split: str, host: str | None, port: int | None,
                          discovery_file: Path | None, pid: int | None, ca: Path | None, cert: Path | None,
                          key: Path | None) -> None:
    from weightslab_cli.client import ClientError, connect, target_from_options

    with connect(target_from_options(host, port, discovery_file, ca, pid, cert, key)) as client:
        if not client.authenticated:
            raise ClientError("the server requires a token: set GRPC_AUTH_TOKEN (or keep the "
                              "`.grpc_auth_token` file in GRPC_TLS_CERT_DIR)")
        reply = client.request(["export_labels", *(["--split", split] if split else [])])
    if not reply.get("ok"):
        raise click.ClickException(str(reply.get("error")))
    try:
        written = labels.write_labels(reply.get("labels") or [], out, fmt)
    except (ValueError, OSError) as exc:  # a bad --format, or a folder that cannot be written
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {len(reply.get('labels') or [])} corrected labels to {written}")
