"""``agent init|models|model|reset|history|health``: the query agent's lifecycle over the CLI server.

The agent comes from the ``weightslab_query_agent`` hook (as for ``ask``); these handlers only
translate arguments and write the same audit actions as the gRPC agent RPCs. An API key given
to ``agent init --key`` is audited as a fingerprint and never echoed back.
"""

from __future__ import annotations

from typing import Any

from weightslab.plugins import call_accepting

from weightslab_cli.commands import CommandContext, CommandError, _agent, _as_dict, _options, command
from weightslab_cli.protocol import Request, split_args

USAGE = ("agent health | agent init [--provider ollama|openrouter] [--model m] [--key K] | agent models | "
         "agent model <id> | agent reset | agent history [N]")
MUTATING = {"init", "model", "reset"}


def _sub(req: Request) -> str:
    tokens = req.args if req.args is not None else split_args(req.rest)
    return tokens[0].lower() if tokens else ""


@command("agent", USAGE, "The query agent: health, connect a provider (init), list/change the model, "
         "reset the connection, show the history.", mutating=lambda req: _sub(req) in MUTATING)
def _agent_cmd(ctx: CommandContext, req: Request) -> dict[str, Any]:
    tokens = list(req.args) if req.args is not None else split_args(req.rest)
    if not tokens:
        raise CommandError(f"usage: {USAGE}")
    sub, rest = tokens[0].lower(), tokens[1:]
    agent = _agent(ctx.experiment)
    if agent is None:
        raise CommandError("no query agent is installed: pip install 'weightslab[agent]'")
    if sub in ("health", "status"):
        return {"agent": _as_dict(_call(agent, "health"))}
    if sub == "models":
        return {"agent_models": _as_dict(_call(agent, "models"))}
    if sub == "history":
        limit = 100
        if rest:
            try:
                limit = int(rest[0])
            except ValueError:
                raise CommandError(f"history limit={rest[0]!r}: expected a positive integer") from None
            if not 1 <= limit <= 10_000:
                raise CommandError(f"history limit={limit}: expected 1..10000")
        return {"agent_history": _as_dict(_call(agent, "history", limit=limit))}
    if sub == "init":
        _, options = _options("", {"provider": True, "model": True, "key": True}, rest)
        key = options.get("key") or None
        params = {"provider": options.get("provider"), "model": options.get("model"), "api_key": key}
        return _audited(ctx, "agent_init", params, key, lambda: _call(
            agent, "init", provider=options.get("provider"), api_key=key, model=options.get("model")))
    if sub == "model":
        if len(rest) != 1:
            raise CommandError("usage: agent model <id> (see `agent models`)")
        return _audited(ctx, "agent_change_model", {"model": rest[0]}, None,
                        lambda: _call(agent, "change_model", rest[0]))
    if sub == "reset":
        return _audited(ctx, "agent_reset", {}, None, lambda: _call(agent, "reset"))
    raise CommandError(f"unknown agent command {sub!r}; usage: {USAGE}")


def _call(agent: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    fn = getattr(agent, name, None)
    if not callable(fn):
        raise CommandError(f"the installed query agent does not provide {name}()")
    return call_accepting(fn, *args, drop_none=True, **kwargs)


def _audited(ctx: CommandContext, action: str, params: dict[str, Any], secret: str | None, run: Any
             ) -> dict[str, Any]:
    """Run ``run`` with one audit record; the secret (if any) is masked in every message."""
    try:
        result = _as_dict(run())
    except Exception as exc:
        message = str(exc).replace(secret, "<redacted>") if secret else str(exc)
        ctx.audit(action, params=params, outcome="error", error=message)
        if isinstance(exc, CommandError):
            raise CommandError(message) from None
        raise CommandError(f"agent error: {message}") from None
    after = {k: result.get(k) for k in ("provider", "model", "initialized")} if isinstance(result, dict) else None
    ctx.audit(action, params=params, after=after)
    return {"agent": result}
