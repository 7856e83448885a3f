"""The CLI server's commands: a table of thin adapters over the core operations.

Each handler parses its arguments, builds the typed request of a
:mod:`weightslab.operations` operation (the same ones the gRPC servicer and the SDK call),
and returns the reply payload (``ok`` is added by the caller) or raises :class:`CommandError`
(a user error). The operations validate, lock (one bounded wait, ``WL_LOCK_TIMEOUT_SECONDS``)
and write the audit record; any unexpected exception is reported as an internal error without
killing the connection.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from weightslab.operations import (
    agent,
    control,
    curves,
    edits,
    evaluation,
    histogram,
    hyperparameters,
    samples,
    status,
)
from weightslab.operations._base import Caller

from weightslab_cli.audit import audit_event
from weightslab_cli.protocol import ProtocolError, Request, _find_option, split_args, split_query_option

log = logging.getLogger("weightslab.cli.server")

DEFAULT_TOP_K = 10
MAX_TOP_K = 10_000
# Audit action names of a command refused before its operation ran (the operations use the same).
AUDIT_ACTIONS = {"pause": "pause", "resume": "resume", "hp": "set_hyperparameter", "tag": "edit_samples",
                 "untag": "edit_samples", "discard": "edit_samples", "restore": "edit_samples",
                 "eval": "start_evaluation", "cancel_eval": "cancel_evaluation", "ask": "agent_query"}


class CommandError(ValueError):
    """A request the user can fix; the message is sent back as ``error``."""


@dataclass
class Session:
    """One client connection: who it is and whether it authenticated."""

    peer: str
    authenticated: bool
    token_fingerprint: str | None = None
    failed_auth: int = 0
    closing: bool = False

    def caller(self) -> Caller:
        return Caller("cli", {"peer": self.peer, "token_fingerprint": self.token_fingerprint})


Handler = Callable[["CommandContext", Request], dict[str, Any]]


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    handler: Handler
    mutating: bool | Callable[[Request], bool] = False
    details: str = ""  # longer help shown by `help <command>` (e.g. the query grammar)

    def is_mutating(self, req: Request) -> bool:
        return self.mutating(req) if callable(self.mutating) else self.mutating


COMMANDS: dict[str, Command] = {}
ALIASES = {"exit": "quit", "evalstatus": "eval_status", "cancel": "cancel_eval", "?": "help"}


def command(name: str, usage: str, help: str, *, mutating: bool | Callable[[Request], bool] = False,
            details: str = "") -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = Command(name, usage, help, fn, mutating, details)
        return fn

    return register


class CommandContext:
    """What a handler needs: the experiment, the session (the caller of every operation)."""

    def __init__(self, experiment: Any, session: Session) -> None:
        self.experiment = experiment
        self.session = session
        self.audited = False  # set once the current command handed a mutation to an operation

    def mutating(self) -> Caller:
        """The caller, for an operation that writes the audit record itself (success or error)."""
        self.audited = True
        return self.session.caller()

    def audit(self, action: str, **fields: Any) -> None:
        self.audited = True
        audit_event(self.experiment, action, caller=self.session.caller().audit(), **fields)


def dispatch(ctx: CommandContext, req: Request) -> dict[str, Any]:
    """Run one request; always returns a reply object with ``ok``."""
    name = ALIASES.get(req.name, req.name)
    cmd = COMMANDS.get(name)
    if cmd is None:
        return {"ok": False, "error": f"unknown command {req.name!r}; send 'help' for the list"}
    ctx.audited = False
    try:
        payload = cmd.handler(ctx, req)
    except Exception as exc:
        message = user_error(exc)
        if message is not None:
            _audit_failure(ctx, cmd, req, message)
            return {"ok": False, "error": message}
        log.exception("CLI command %r failed", name)
        # the details (paths, internals) stay in the server log; the client gets the exception type
        message = f"internal error in {name} ({type(exc).__name__}); see the server log"
        _audit_failure(ctx, cmd, req, message)
        return {"ok": False, "error": message}
    return {"ok": True, **payload}


def user_error(exc: BaseException) -> str | None:
    """The message a user gets for an error they can act on; ``None`` for an internal error."""
    from weightslab.checkpoints import TrainingNotPaused
    from weightslab.evaluation import EvaluationBusy, EvaluationError
    from weightslab.lock import LockTimeout
    from weightslab.operations import Unavailable

    if isinstance(exc, LockTimeout):
        return f"experiment busy: {exc}; retry later"
    if isinstance(exc, KeyError):
        return str(exc.args[0]) if exc.args else str(exc)
    if isinstance(exc, (CommandError, ProtocolError, ValueError, TypeError, ConnectionError, Unavailable,
                        EvaluationBusy, EvaluationError, TrainingNotPaused)):
        return str(exc)
    return None


def _audit_failure(ctx: CommandContext, cmd: Command, req: Request, message: str) -> None:
    """A failed attempt at a mutation is audited too (unless the handler already did)."""
    if not ctx.audited and cmd.is_mutating(req):
        ctx.audit(AUDIT_ACTIONS.get(cmd.name, cmd.name), params={"command": cmd.name, "args": req.rest},
                  outcome="error", error=message)


# -- small parsers -----------------------------------------------------------------------------


def _options(text: str, allowed: dict[str, bool], args: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """Positional arguments and ``--name value`` options (``allowed[name]``: takes a value)."""
    tokens = list(args) if args is not None else split_args(text)
    positional: list[str] = []
    options: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("--") and len(tok) > 2:
            name, eq, value = tok[2:].partition("=")
            if name not in allowed:
                known = ", ".join(f"--{n}" for n in allowed) or "none"
                raise CommandError(f"unknown option --{name} (options: {known})")
            if allowed[name]:
                if not eq:
                    i += 1
                    if i >= len(tokens):
                        raise CommandError(f"option --{name} needs a value")
                    value = tokens[i]
                options[name] = value
            else:
                options[name] = "1"
        else:
            positional.append(tok)
        i += 1
    return positional, options


def _positive_int(text: str, what: str, maximum: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise CommandError(f"{what}={text!r}: expected a positive integer") from None
    if value < 1 or (maximum is not None and value > maximum):
        bound = f" (at most {maximum})" if maximum is not None else ""
        raise CommandError(f"{what}={text!r}: expected a positive integer{bound}")
    return value


def _no_args(req: Request, usage: str) -> None:
    """Commands without arguments refuse extra words instead of ignoring them (`status --json`)."""
    extra = (req.args if req.args is not None else split_args(req.rest))
    if extra:
        hint = (" (client options such as --json go before the command: weightslab cli --json "
                f"{usage.split()[0]})") if any(a.startswith("--") for a in extra) else ""
        raise CommandError(f"{usage.split()[0]} takes no arguments, got {' '.join(extra)!r}; usage: {usage}{hint}")


def _trailing_options(query: str | None, allowed: dict[str, bool]) -> tuple[str | None, list[str]]:
    """Options written after ``--query`` (``--query loss > 2 --split train``): ``(query, option
    tokens)``. Options may go anywhere; only a known option word outside quotes is taken out."""
    if not query:
        return query, []
    taken: list[str] = []
    for name, has_value in allowed.items():
        at = _find_option(query, f"--{name}")
        if at is None:
            continue
        head, tail = query[:at].rstrip(), query[at + len(name) + 2:].lstrip(" =\t")
        taken.append(f"--{name}")
        if has_value:
            value, _, tail = tail.partition(" ")
            taken.append(value)
        query = (head + " " + tail.strip()).strip()
    return query, taken


def _ids(tokens: list[str]) -> list[str]:
    ids = [part for tok in tokens for part in tok.split(",") if part.strip()]
    return [i.strip() for i in ids]


# -- commands ------------------------------------------------------------------------------------


@command("help", "help [command]", "List the commands, or show one command's usage.")
def _help(ctx: CommandContext, req: Request) -> dict[str, Any]:
    name = ALIASES.get(req.rest.strip().lower(), req.rest.strip().lower())
    if name:
        cmd = COMMANDS.get(name)
        if cmd is None:
            raise CommandError(f"unknown command {name!r}; send 'help' for the list")
        out: dict[str, Any] = {"commands": {cmd.name: _describe(cmd)}}
        if cmd.details:
            out["details"] = cmd.details
        return out
    return {"commands": {c.name: _describe(c) for c in COMMANDS.values()}}


def _describe(cmd: Command) -> dict[str, Any]:
    return {"usage": cmd.usage, "help": cmd.help, "mutating": bool(cmd.mutating)}


@command("status", "status", "Training state, step, samples, latest signal values.")
def _status(ctx: CommandContext, req: Request) -> dict[str, Any]:
    _no_args(req, "status")
    return {"status": status.get_status(ctx.experiment).to_dict()}


@command("pause", "pause", "Pause training at the next step boundary.", mutating=True)
def _pause(ctx: CommandContext, req: Request) -> dict[str, Any]:
    _no_args(req, "pause")
    result = control.pause(ctx.experiment, ctx.mutating())
    out: dict[str, Any] = {"state": result.state}
    if result.previous_state == "paused":
        out["note"] = "already paused: nothing changed"
    return out


@command("resume", "resume [N]", "Resume training; with N, run N optimizer steps then pause.", mutating=True)
def _resume(ctx: CommandContext, req: Request) -> dict[str, Any]:
    positional, _ = _options(req.rest, {}, req.args)
    if len(positional) > 1:
        raise CommandError("usage: resume [N]")
    steps = _positive_int(positional[0], "N") if positional else None
    result = control.resume(ctx.experiment, control.ResumeRequest(steps=steps), ctx.mutating())
    out: dict[str, Any] = {"state": result.state, "steps": steps}
    if result.previous_state == "running" and steps is None:
        out["note"] = "already running: nothing changed"
    return out


@command("hp", "hp [list] | hp get <key> | hp set <key> <value>",
         "Show or change hyperparameters (a change applies at the next step).",
         mutating=lambda req: (req.args[0] if req.args else req.rest).strip().lower().startswith("set"))
def _hp(ctx: CommandContext, req: Request) -> dict[str, Any]:
    tokens = list(req.args) if req.args is not None else split_args(req.rest)
    sub = tokens[0].lower() if tokens else "list"
    if sub == "list" and len(tokens) <= 1:
        values = hyperparameters.get_hyperparameters(ctx.experiment)
        listing: dict[str, Any] = {"applied": values.applied(), "pending": values.pending()}
        if values.rejected:  # edits the loop refused when applying them (the old value stayed)
            listing["rejected"] = values.rejected_edits()
        return {"hyperparameters": listing}
    if sub == "get" and len(tokens) == 2:
        key = tokens[1]
        listed = hyperparameters.get_hyperparameters(ctx.experiment)
        found = {p.key: p for p in listed.parameters}
        if key not in found:
            raise CommandError(f"unknown hyperparameter {key!r}; known: {', '.join(sorted(found)) or 'none'}")
        out: dict[str, Any] = {"key": key, "value": found[key].applied}
        if found[key].has_requested:
            out["pending"] = found[key].requested
        rejected = listed.rejected_edits().get(key)
        if rejected is not None:  # the same shape as `hp list`'s (value, reason, kept)
            out["rejected"] = rejected
        return out
    if sub == "set" and len(tokens) >= 3:
        key, value = tokens[1], " ".join(tokens[2:])
        result = hyperparameters.set_hyperparameter(
            ctx.experiment, hyperparameters.SetHyperParameterRequest(key=key, value=value), ctx.mutating())
        return {"key": key, "requested": result.requested, "applied": result.previous,
                "note": "applies at the next training step (if the loop refuses it then, the current value "
                        "stays and `hp list` / `hp get` show why)"}
    raise CommandError("usage: hp [list] | hp get <key> | hp set <key> <value>")


def _table_rows(ctx: CommandContext) -> int:
    """Rows in the whole table: the N of "0 of N rows"."""
    return sum(s.samples for s in samples.list_splits(ctx.experiment))


@command("top", "top <signal> [k] [--split s] [--smallest]",
         "The k samples with the highest (or lowest) value of a column, e.g. top suspected_mislabel 20.")
def _top(ctx: CommandContext, req: Request) -> dict[str, Any]:
    positional, options = _options(req.rest, {"split": True, "smallest": False}, req.args)
    if not positional or len(positional) > 2:
        raise CommandError("usage: top <signal> [k] [--split s] [--smallest]")
    signal = positional[0]
    k = _positive_int(positional[1], "k", MAX_TOP_K) if len(positional) == 2 else DEFAULT_TOP_K
    largest = "smallest" not in options
    spec: dict[str, Any] = {"top_k": {"column": signal, "k": k, "largest": largest},
                            "sort": [{"column": signal, "descending": largest}],
                            "page": {"offset": 0, "limit": min(k, MAX_TOP_K)}}
    if "split" in options:
        spec["filter"] = {"op": "==", "column": "split", "value": options["split"]}
    page = samples.query_samples(ctx.experiment, samples.QuerySamplesRequest(query=spec, allow_groups=False))
    out = {"signal": signal, "k": k, "total": page.total, "table_rows": _table_rows(ctx), "rows": page.records()}
    return {**out, "notes": list(page.notes)} if page.notes else out


QUERY_HELP = """\
Query syntax (keywords any case; column names as shown by `query limit 1`):
  filter   name OP value (OP: == != < <= > >=), name between a and b, name in (a, b),
           name contains "text", name is null, has:TAG, tag:NAME == "value",
           combined with and / or / not and parentheses
  clauses  sort by col [asc|desc], ... | limit N (1..10000) | offset N | top N by col |
           bottom N by col | group by col, ... [: count, mean(col), ...] | aggregate count, max(col)
Columns: sample_id, split, discarded, label, prediction, the signals (loss, accuracy, ...),
suspected_mislabel (a ranking score, not a probability: compare samples, use `top`), tags.
Examples:
  query loss > 2 sort by loss desc limit 20
  query split == "train" and has:noisy
  query label == 3 top 10 by loss
  query group by split, label: count, mean(loss)
Quote the whole query in a shell: weightslab cli query 'loss > 2 limit 5'.
A query that matches nothing answers "0 of N rows"; an unknown column, split or tag is an
error listing the known ones."""


@command("query", "query <text query>",
         "Filter/sort/page (or group) the sample table, e.g. query loss > 2 sort by loss desc limit 20; "
         "`help query` shows the syntax.", details=QUERY_HELP)
def _query(ctx: CommandContext, req: Request) -> dict[str, Any]:
    text = " ".join(req.args) if req.args is not None else req.rest
    if not text.strip():
        raise CommandError("usage: query <text query>, e.g. query loss > 2 sort by loss desc limit 20")
    page = samples.query_samples(ctx.experiment, samples.QuerySamplesRequest(query=text))
    out: dict[str, Any] = {"query": text, "total": page.total, "offset": page.offset, "limit": page.limit,
                           "table_rows": _table_rows(ctx)}
    if page.groups is not None:
        out["groups"] = list(page.groups)
        out["total_groups"] = page.total_groups
    else:
        out["rows"] = page.records()
    if page.notes:
        out["notes"] = list(page.notes)
    return out


@command("hist", "hist <column> [--bins N] [--by-position] [--query q]",
         "Histogram of a column over the rows a query matches (numeric bins, or one bin per text value), "
         "per split and discarded; --by-position bins the query's sort order instead; options go anywhere.")
def _hist(ctx: CommandContext, req: Request) -> dict[str, Any]:
    before, query = split_query_option(req.rest, req.args)
    query, after = _trailing_options(query, {"bins": True, "by-position": False})
    positional, options = _options(before, {"bins": True, "by-position": False}, split_args(before) + after)
    by_position = "by-position" in options
    if len(positional) != (0 if by_position else 1):
        raise CommandError("usage: hist <column> [--bins N] [--by-position] [--query q]")
    bins = _positive_int(options["bins"], "--bins") if "bins" in options else 0
    result = histogram.histogram(ctx.experiment, histogram.HistogramRequest(
        query=query, mode="position" if by_position else "value", column=positional[0] if positional else "",
        bins=bins))
    return {"histogram": dataclasses.asdict(result)}


@command("curves", "curves [signal ...] [--since seq] [--split s] [--max-points N]",
         "Curve points newer than a cursor (pass back next_seq as --since), downsampled keeping extremes.")
def _curves(ctx: CommandContext, req: Request) -> dict[str, Any]:
    positional, options = _options(req.rest, {"since": True, "split": True, "max-points": True}, req.args)
    since = int(options["since"]) if options.get("since", "").isdigit() else 0
    if "since" in options and not options["since"].isdigit():
        raise CommandError(f"--since={options['since']!r}: expected a sequence number >= 0")
    max_points = _positive_int(options["max-points"], "--max-points") if "max-points" in options else 0
    result = curves.get_curves(ctx.experiment, curves.CurvesRequest(
        signals=tuple(positional), since_seq=since, split=options.get("split", ""), max_points=max_points))
    return {"curves": dataclasses.asdict(result)}


def _edit(ctx: CommandContext, req: Request, action: str, *, with_tag: bool) -> dict[str, Any]:
    before, query = split_query_option(req.rest, req.args)
    query, after = _trailing_options(query, {"split": True})
    positional, options = _options(before, {"split": True}, split_args(before) + after)
    usage = (f"usage: {action} <tag> <ids|--query q> [--split s]" if with_tag
             else f"usage: {action} <ids|--query q> [--split s]")
    tag = value = ""
    if with_tag:
        if not positional:
            raise CommandError(usage)
        tag = positional.pop(0)
    edit_action = action
    if "=" in tag:  # categorical tag: name=value
        tag, _, value = tag.partition("=")
        edit_action = "set_category" if action == "tag" else "clear_category"
        if action == "untag":
            value = ""
    ids = _ids(positional)
    if (query is None) == (not ids):
        raise CommandError(usage + " (give sample ids or --query, not both)")
    if query is not None and not query.strip():
        raise CommandError(f"{action}: --query needs a query text")
    result = edits.edit_samples(ctx.experiment, edits.EditRequest(
        action=edit_action, ids=tuple(ids) if ids else None, query=query, split=options.get("split", ""),
        tag=tag, value=value), ctx.mutating())
    out: dict[str, Any] = {"action": edit_action, "matched": result.matched, "changed": result.changed,
                           "sample_ids": list(result.sample_ids), "samples": list(result.samples)}
    if result.note:
        out["note"] = result.note
    elif result.matched and not result.changed:
        out["note"] = f"nothing changed: the {result.matched} matched samples were already in that state"
    return out


@command("tag", "tag <tag|name=value> <ids|--query q> [--split s]",
         "Tag samples (boolean tag, or categorical name=value) by ids (split:id when an id is in several "
         "splits) or by query (filter, top N by col).", mutating=True)
def _tag(ctx: CommandContext, req: Request) -> dict[str, Any]:
    return _edit(ctx, req, "tag", with_tag=True)


@command("untag", "untag <tag|name=> <ids|--query q> [--split s]", "Remove a tag from samples.", mutating=True)
def _untag(ctx: CommandContext, req: Request) -> dict[str, Any]:
    return _edit(ctx, req, "untag", with_tag=True)


@command("discard", "discard <ids|--query q> [--split s]",
         "Discard samples: training skips them from the next batch on.", mutating=True)
def _discard(ctx: CommandContext, req: Request) -> dict[str, Any]:
    return _edit(ctx, req, "discard", with_tag=False)


@command("restore", "restore <ids|--query q> [--split s]", "Bring discarded samples back.", mutating=True)
def _restore(ctx: CommandContext, req: Request) -> dict[str, Any]:
    return _edit(ctx, req, "restore", with_tag=False)


# -- evaluation --------------------------------------------------------------------------------


@command("eval", "eval <split> [--tags a,b] [--steps N]",
         "Start an evaluation pass over a split (optionally only samples with all the given tags).",
         mutating=True)
def _eval(ctx: CommandContext, req: Request) -> dict[str, Any]:
    positional, options = _options(req.rest, {"tags": True, "steps": True}, req.args)
    if len(positional) != 1:
        raise CommandError("usage: eval <split> [--tags a,b] [--steps N]")
    tags = tuple(t.strip() for t in options.get("tags", "").split(",") if t.strip())
    steps = _positive_int(options["steps"], "--steps") if "steps" in options else None
    result = evaluation.start_evaluation(ctx.experiment, evaluation.StartEvaluationRequest(
        split=positional[0], tags=tags, max_steps=steps), ctx.mutating())
    return {"evaluation": result.details}


@command("eval_status", "eval_status", "Progress, metrics and state of the current or last evaluation pass.")
def _eval_status(ctx: CommandContext, req: Request) -> dict[str, Any]:
    _no_args(req, "eval_status")
    return {"evaluation": evaluation.evaluation_status(ctx.experiment).details}


@command("cancel_eval", "cancel_eval", "Cancel the running evaluation pass.", mutating=True)
def _cancel_eval(ctx: CommandContext, req: Request) -> dict[str, Any]:
    _no_args(req, "cancel_eval")
    before = evaluation.evaluation_status(ctx.experiment).state
    out: dict[str, Any] = {"evaluation": evaluation.cancel_evaluation(ctx.experiment, ctx.mutating()).details}
    if before != "running":
        out["note"] = "nothing to cancel: no evaluation is running" + (f" (the last one: {before})"
                                                                       if before not in ("", "idle") else "")
    return out


# -- agent -------------------------------------------------------------------------------------


@command("ask", "ask [--apply [plan_id]] <question in natural language>",
         "Ask the query agent (needs the agent plugin), e.g. ask which samples look mislabelled? "
         "Tag/discard plans are previewed only; `ask --apply [plan_id]` applies the previewed plan.",
         mutating=lambda req: "--apply" in (req.args or req.rest.split()))
def _ask(ctx: CommandContext, req: Request) -> dict[str, Any]:
    text = (" ".join(req.args) if req.args is not None else req.rest).strip()
    preview = text.startswith("--preview")
    if preview:  # the default for actions; kept for older clients
        text = text[len("--preview"):].strip()
    apply = text.startswith("--apply")
    plan_id = ""
    if apply:
        text = text[len("--apply"):].strip()
        first, _, rest = text.partition(" ")
        if re.fullmatch(r"[0-9a-f]{8}", first):
            plan_id, text = first, rest.strip()
    if not text and not apply:
        raise CommandError("usage: ask [--apply [plan_id]] <question in natural language>")
    answer = agent.ask(ctx.experiment, text, preview=preview, apply=apply, plan_id=plan_id,
                       caller=ctx.mutating())
    return {"question": text, "preview": preview, "answer": answer.details}


from weightslab_cli import agent_commands as _agent_commands  # noqa: E402,F401 - registers `agent`
from weightslab_cli import label_commands as _label_commands  # noqa: E402,F401 - registers `relabel` ...
from weightslab_cli import quality_commands as _quality_commands  # noqa: E402,F401 - registers `data-quality`

# -- session -------------------------------------------------------------------------------------


@command("quit", "quit", "Close the connection.")
def _quit(ctx: CommandContext, req: Request) -> dict[str, Any]:
    _no_args(req, "quit")
    ctx.session.closing = True
    return {"bye": True}
