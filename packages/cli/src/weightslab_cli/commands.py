"""The CLI server's commands: thin adapters over the experiment's own read/edit methods.

Queries go through the core query engine (``weightslab.query``), edits through
``Experiment.edit``, control through ``Experiment.control``, hyperparameters through
``Experiment.set_hyperparameter``: no second implementation. Every handler returns the reply
payload (``ok`` is added by the caller) or raises :class:`CommandError` (a user error) —
any other exception is reported as an internal error without killing the connection.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from weightslab.plugins import call_accepting

from weightslab_cli.audit import audit_event
from weightslab_cli.protocol import ProtocolError, Request, split_args, split_query_option

log = logging.getLogger("weightslab.cli.server")

DEFAULT_TOP_K = 10
MAX_TOP_K = 10_000
DEFAULT_LOCK_TIMEOUT = 30.0
# Audit action names shared with the gRPC server, so one audit file reads the same whatever the transport.
EDIT_AUDIT_ACTION = "edit_samples"
AUDIT_ACTIONS = {"pause": "pause", "resume": "resume", "hp": "set_hyperparameter", "tag": EDIT_AUDIT_ACTION,
                 "untag": EDIT_AUDIT_ACTION, "discard": EDIT_AUDIT_ACTION, "restore": EDIT_AUDIT_ACTION,
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

    def caller(self) -> dict[str, Any]:
        return {"transport": "cli", "peer": self.peer, "token_fingerprint": self.token_fingerprint}


Handler = Callable[["CommandContext", Request], dict[str, Any]]


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    handler: Handler
    mutating: bool | Callable[[Request], bool] = False

    def is_mutating(self, req: Request) -> bool:
        return self.mutating(req) if callable(self.mutating) else self.mutating


COMMANDS: dict[str, Command] = {}
ALIASES = {"exit": "quit", "evalstatus": "eval_status", "cancel": "cancel_eval", "?": "help"}


def command(name: str, usage: str, help: str, *,
            mutating: bool | Callable[[Request], bool] = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = Command(name, usage, help, fn, mutating)
        return fn

    return register


class CommandContext:
    """What a handler needs: the experiment, the session, and the lock/audit helpers."""

    def __init__(self, experiment: Any, session: Session) -> None:
        self.experiment = experiment
        self.session = session
        self.audited = False  # set once the current command wrote its audit record

    @property
    def lock_timeout(self) -> float:
        config = getattr(self.experiment, "config", None)
        try:
            return float(config["watchdog"].stuck_seconds)  # type: ignore[index]
        except (KeyError, TypeError, AttributeError, ValueError):
            return DEFAULT_LOCK_TIMEOUT

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the main lock, or fail with a clear error instead of hanging."""
        from weightslab.lock import LockTimeout, try_acquire_rlock

        try:
            with try_acquire_rlock(self.experiment.lock, self.lock_timeout):
                yield
        except LockTimeout as exc:
            raise CommandError(f"experiment busy: {exc}") from None

    def audit(self, action: str, **fields: Any) -> None:
        self.audited = True
        audit_event(self.experiment, action, caller=self.session.caller(), **fields)


def dispatch(ctx: CommandContext, req: Request) -> dict[str, Any]:
    """Run one request; always returns a reply object with ``ok``."""
    name = ALIASES.get(req.name, req.name)
    cmd = COMMANDS.get(name)
    if cmd is None:
        return {"ok": False, "error": f"unknown command {req.name!r}; send 'help' for the list"}
    ctx.audited = False
    try:
        payload = cmd.handler(ctx, req)
    except (CommandError, ProtocolError, ValueError, KeyError, TypeError) as exc:
        # user errors, including validation errors from the core (query, hp, edits)
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        _audit_failure(ctx, cmd, req, message)
        return {"ok": False, "error": message}
    except Exception as exc:
        log.exception("CLI command %r failed", name)
        # the details (paths, internals) stay in the server log; the client gets the exception type
        message = f"internal error in {name} ({type(exc).__name__}); see the server log"
        _audit_failure(ctx, cmd, req, message)
        return {"ok": False, "error": message}
    return {"ok": True, **payload}


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


def _ids(tokens: list[str]) -> list[str]:
    ids = [part for tok in tokens for part in tok.split(",") if part.strip()]
    return [i.strip() for i in ids]


# -- rows ----------------------------------------------------------------------------------------


def rows_payload(frame: Any, indices: np.ndarray) -> list[dict[str, Any]]:
    """One dict per row: id, split, discarded, every column, tags (``name`` / ``name=value``)."""
    rows: list[dict[str, Any]] = []
    for i in np.asarray(indices, dtype=np.int64).tolist():
        row: dict[str, Any] = {"sample_id": str(frame.sample_id[i]), "split": str(frame.split[i]),
                               "discarded": bool(frame.discarded[i])}
        for name, col in frame.columns.items():
            value = col[i]
            row[name] = value.item() if hasattr(value, "item") else value
        tags = [name for name, col in frame.tags.items() if col[i]]
        tags += [f"{name}={col[i]}" for name, col in frame.categories.items() if col[i] is not None]
        row["tags"] = sorted(tags)
        rows.append(row)
    return rows


# -- commands ------------------------------------------------------------------------------------


@command("help", "help [command]", "List the commands, or show one command's usage.")
def _help(ctx: CommandContext, req: Request) -> dict[str, Any]:
    name = ALIASES.get(req.rest.strip().lower(), req.rest.strip().lower())
    if name:
        cmd = COMMANDS.get(name)
        if cmd is None:
            raise CommandError(f"unknown command {name!r}; send 'help' for the list")
        return {"commands": {cmd.name: _describe(cmd)}}
    return {"commands": {c.name: _describe(c) for c in COMMANDS.values()}}


def _describe(cmd: Command) -> dict[str, Any]:
    return {"usage": cmd.usage, "help": cmd.help, "mutating": bool(cmd.mutating)}


@command("status", "status", "Training state, step, samples, latest signal values.")
def _status(ctx: CommandContext, req: Request) -> dict[str, Any]:
    with ctx.locked():
        status = ctx.experiment.status()
    return {"status": status}


@command("pause", "pause", "Pause training at the next step boundary.", mutating=True)
def _pause(ctx: CommandContext, req: Request) -> dict[str, Any]:
    control = ctx.experiment.control
    before = control.state.value
    control.pause()
    after = control.state.value
    ctx.audit("pause", before={"state": before}, after={"state": after})
    return {"state": after}


@command("resume", "resume [N]", "Resume training; with N, run N optimizer steps then pause.", mutating=True)
def _resume(ctx: CommandContext, req: Request) -> dict[str, Any]:
    positional, _ = _options(req.rest, {}, req.args)
    if len(positional) > 1:
        raise CommandError("usage: resume [N]")
    steps = _positive_int(positional[0], "N") if positional else None
    control = ctx.experiment.control
    before = control.state.value
    control.resume(steps)
    after = control.state.value
    ctx.audit("resume", params={"steps": steps}, before={"state": before}, after={"state": after})
    return {"state": after, "steps": steps}


@command("hp", "hp [list] | hp get <key> | hp set <key> <value>",
         "Show or change hyperparameters (a change applies at the next step).",
         mutating=lambda req: (req.args[0] if req.args else req.rest).strip().lower().startswith("set"))
def _hp(ctx: CommandContext, req: Request) -> dict[str, Any]:
    tokens = list(req.args) if req.args is not None else split_args(req.rest)
    sub = tokens[0].lower() if tokens else "list"
    experiment = ctx.experiment
    if sub == "list" and len(tokens) <= 1:
        return {"hyperparameters": experiment.hyperparameters()}
    if sub == "get" and len(tokens) == 2:
        key = tokens[1]
        hps = experiment.hyperparameters()
        if key not in hps["applied"] and key not in hps["pending"]:
            known = ", ".join(sorted(hps["applied"])) or "none"
            raise CommandError(f"unknown hyperparameter {key!r}; known: {known}")
        out: dict[str, Any] = {"key": key, "value": hps["applied"].get(key)}
        if key in hps["pending"]:
            out["pending"] = hps["pending"][key]
        return out
    if sub == "set" and len(tokens) >= 3:
        key, value = tokens[1], " ".join(tokens[2:])
        before = experiment.hyperparameters()["applied"].get(key)
        try:
            requested = experiment.set_hyperparameter(key, value)
        except (ValueError, KeyError) as exc:
            message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
            ctx.audit("set_hyperparameter", params={"key": key, "value": value}, outcome="error", error=message)
            raise CommandError(message) from None
        ctx.audit("set_hyperparameter", params={"key": key, "value": value}, before={key: before},
                  after={key: requested})
        return {"key": key, "requested": requested, "applied": before,
                "note": "applies at the next training step"}
    raise CommandError("usage: hp [list] | hp get <key> | hp set <key> <value>")


@command("top", "top <signal> [k] [--split s] [--smallest]",
         "The k samples with the highest (or lowest) value of a column, e.g. top suspected_mislabel 20.")
def _top(ctx: CommandContext, req: Request) -> dict[str, Any]:
    from weightslab.query import Query, run_query

    positional, options = _options(req.rest, {"split": True, "smallest": False}, req.args)
    if not positional or len(positional) > 2:
        raise CommandError("usage: top <signal> [k] [--split s] [--smallest]")
    signal = positional[0]
    k = _positive_int(positional[1], "k", MAX_TOP_K) if len(positional) == 2 else DEFAULT_TOP_K
    largest = "smallest" not in options
    spec: dict[str, Any] = {"top_k": {"column": signal, "k": k, "largest": largest},
                            "sort": [{"column": signal, "descending": largest}],
                            "page": {"offset": 0, "limit": min(k, 10_000)}}
    if "split" in options:
        spec["filter"] = {"op": "==", "column": "split", "value": options["split"]}
    query = Query.model_validate(spec)
    frame = _frame(ctx)
    result = run_query(frame, query)
    return {"signal": signal, "k": k, "total": result.total, "rows": rows_payload(frame, result.indices)}


@command("query", "query <text query>",
         "Filter/sort/page (or group) the sample table, e.g. query loss > 2 sort by loss desc limit 20.")
def _query(ctx: CommandContext, req: Request) -> dict[str, Any]:
    from weightslab.query import run_query

    text = " ".join(req.args) if req.args is not None else req.rest
    if not text.strip():
        raise CommandError("usage: query <text query>, e.g. query loss > 2 sort by loss desc limit 20")
    frame = _frame(ctx)
    result = run_query(frame, text)
    out: dict[str, Any] = {"query": text, "total": result.total, "offset": result.offset, "limit": result.limit}
    if result.groups is not None:
        out["groups"] = [g.to_dict() for g in result.groups]
        out["total_groups"] = result.total_groups
    else:
        out["rows"] = rows_payload(frame, result.indices)
    return out


def _frame(ctx: CommandContext) -> Any:
    with ctx.locked():
        return ctx.experiment.frame()


def _edit(ctx: CommandContext, req: Request, action: str, *, with_tag: bool) -> dict[str, Any]:
    before, query = split_query_option(req.rest, req.args)
    positional, options = _options(before, {"split": True})
    usage = (f"usage: {action} <tag> <ids|--query q> [--split s]" if with_tag
             else f"usage: {action} <ids|--query q> [--split s]")
    tag = value = None
    if with_tag:
        if not positional:
            raise CommandError(usage)
        tag = positional.pop(0)
    edit_action = action
    if tag is not None and "=" in tag:  # categorical tag: name=value
        tag, _, value = tag.partition("=")
        edit_action = "set_category" if action == "tag" else "clear_category"
        if action == "untag":
            value = None
    ids = _ids(positional)
    if (query is None) == (not ids):
        raise CommandError(usage + " (give sample ids or --query, not both)")
    if query is not None and not query.strip():
        raise CommandError(f"{action}: --query needs a query text")
    split = options.get("split")
    params: dict[str, Any] = {"action": edit_action, "split": split, "tag": tag, "value": value}
    if ids:
        params.update(ids_count=len(ids), ids=ids[:100])
    else:
        params["query"] = query
    try:
        result = ctx.experiment.edit(edit_action, ids=ids or None, query=query, split=split, tag=tag,
                                     value=value, lock_timeout=ctx.lock_timeout)
    except Exception as exc:
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        ctx.audit(EDIT_AUDIT_ACTION, params=params, outcome="error", error=message)
        if isinstance(exc, (ValueError, KeyError, TypeError, TimeoutError)):
            raise CommandError(message) from None
        raise
    ctx.audit(EDIT_AUDIT_ACTION, params=params, result={"matched": result["matched"], "changed": result["changed"]})
    return {"action": edit_action, **result}


@command("tag", "tag <tag|name=value> <ids|--query q> [--split s]",
         "Tag samples (boolean tag, or categorical name=value) by ids or by query; --query comes last.",
         mutating=True)
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


def _evaluation(ctx: CommandContext) -> Any:
    evaluation = getattr(ctx.experiment, "evaluation", None)
    if evaluation is None:
        raise CommandError("evaluation not available")
    return evaluation


def _eval_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Evaluation controller errors (busy, no model...) are RuntimeErrors: report them to the user."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError as exc:
        raise CommandError(str(exc)) from None


@command("eval", "eval <split> [--tags a,b] [--steps N]",
         "Start an evaluation pass over a split (optionally only samples with all the given tags).",
         mutating=True)
def _eval(ctx: CommandContext, req: Request) -> dict[str, Any]:
    positional, options = _options(req.rest, {"tags": True, "steps": True}, req.args)
    if len(positional) != 1:
        raise CommandError("usage: eval <split> [--tags a,b] [--steps N]")
    split = positional[0]
    tags = [t.strip() for t in options.get("tags", "").split(",") if t.strip()] or None
    steps = _positive_int(options["steps"], "--steps") if "steps" in options else None
    params = {"split": split, "tags": tags, "max_steps": steps}
    evaluation = _evaluation(ctx)
    before = _state_of(evaluation)
    try:
        status = _eval_call(evaluation.start, split, tags=tags, max_steps=steps)
    except Exception as exc:
        ctx.audit("start_evaluation", params=params, outcome="error", error=str(exc), before=before)
        raise
    ctx.audit("start_evaluation", params=params, before=before, after=_state_of(evaluation))
    return {"evaluation": status}


def _state_of(evaluation: Any) -> Any:
    try:
        return evaluation.status().get("state")
    except Exception:
        return None


@command("eval_status", "eval_status", "Progress, metrics and state of the current or last evaluation pass.")
def _eval_status(ctx: CommandContext, req: Request) -> dict[str, Any]:
    return {"evaluation": _eval_call(_evaluation(ctx).status)}


@command("cancel_eval", "cancel_eval", "Cancel the running evaluation pass.", mutating=True)
def _cancel_eval(ctx: CommandContext, req: Request) -> dict[str, Any]:
    evaluation = _evaluation(ctx)
    before = _state_of(evaluation)
    status = _eval_call(evaluation.cancel)
    ctx.audit("cancel_evaluation", before=before, after=status.get("state") if isinstance(status, dict) else None)
    return {"evaluation": status}


# -- agent -------------------------------------------------------------------------------------


_agents: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_agents_lock = threading.Lock()


def _agent(experiment: Any) -> Any:
    """The experiment's query agent (``weightslab_query_agent`` hook), created once and kept."""
    with _agents_lock:
        agent = _agents.get(experiment)
        if agent is None:
            agent = experiment.pm.hook.weightslab_query_agent(config=experiment.config)
            if agent is not None:
                _agents[experiment] = agent
    return agent


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
    plan_id = None
    if apply:
        text = text[len("--apply"):].strip()
        first, _, rest = text.partition(" ")
        if re.fullmatch(r"[0-9a-f]{8}", first):
            plan_id, text = first, rest.strip()
    if not text and not apply:
        raise CommandError("usage: ask [--apply [plan_id]] <question in natural language>")
    experiment = ctx.experiment
    agent = _agent(experiment)
    if agent is None:
        raise CommandError("no query agent is installed: pip install 'weightslab[agent]'")
    query = getattr(agent, "query", None)
    if not callable(query):
        raise CommandError("the installed query agent does not provide query()")
    params: dict[str, Any] = {"question": text, "preview": preview}
    if apply:
        params.update(apply=True, plan_id=plan_id)
    try:
        answer = call_accepting(query, text, preview=preview, experiment=experiment, apply=apply or None,
                                plan_id=plan_id, caller=ctx.session.caller(), drop_none=True)
    except Exception as exc:
        ctx.audit("agent_query", params=params, outcome="error", error=str(exc))
        raise CommandError(f"agent error: {exc}") from None
    result = _as_dict(answer)
    summary = {k: result[k] for k in ("applied", "matched", "plan") if isinstance(result, dict) and k in result}
    ctx.audit("agent_query", params=params, result=summary or None)
    return {"question": text, "preview": preview, "answer": result}


def _as_dict(value: Any) -> Any:
    if value is None or isinstance(value, (dict, list, str, int, float, bool)):
        return value
    for attr in ("to_dict", "model_dump", "_asdict"):
        fn = getattr(value, attr, None)
        if callable(fn):
            return fn()
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(value)
    return str(value)


from weightslab_cli import agent_commands as _agent_commands  # noqa: E402,F401 - registers `agent`

# -- session -------------------------------------------------------------------------------------


@command("quit", "quit", "Close the connection.")
def _quit(ctx: CommandContext, req: Request) -> dict[str, Any]:
    ctx.session.closing = True
    return {"bye": True}
