"""``agent health|init|models|model|reset|history``: the query agent's lifecycle over the CLI server.

Thin adapters over :mod:`weightslab.operations.agent` (the same operations the gRPC agent RPCs
call): they validate, write the audit record (``agent_init`` with the API key as a fingerprint
only, ``agent_change_model``, ``agent_reset``) and map errors; nothing here echoes a key.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from weightslab.operations import agent

from weightslab_cli.commands import CommandContext, CommandError, _options, command
from weightslab_cli.protocol import Request, split_args

USAGE = ("agent health | agent init [--provider ollama|openrouter] [--model m] [--key K] | agent models | "
         "agent model <id> | agent reset | agent history [N]")
MUTATING = {"init", "model", "reset"}


def _tokens(req: Request) -> list[str]:
    return list(req.args) if req.args is not None else split_args(req.rest)


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) and not isinstance(value, type) else value


@command("agent", USAGE, "The query agent: health, connect a provider (init), list/change the model, "
         "reset the connection, show the history.",
         mutating=lambda req: bool(_tokens(req)) and _tokens(req)[0].lower() in MUTATING)
def _agent_cmd(ctx: CommandContext, req: Request) -> dict[str, Any]:
    tokens = _tokens(req)
    if not tokens:
        raise CommandError(f"usage: {USAGE}")
    sub, rest = tokens[0].lower(), tokens[1:]
    experiment = ctx.experiment
    if sub in ("health", "status"):
        return {"agent": _plain(agent.health(experiment))}
    if sub == "models":
        return {"agent_models": _plain(agent.models(experiment))}
    if sub == "history":
        limit = 0
        if rest:
            try:
                limit = int(rest[0])
            except ValueError:
                raise CommandError(f"history limit={rest[0]!r}: expected a positive integer") from None
        return {"agent_history": [_plain(e) for e in agent.history(experiment, limit)]}
    if sub == "init":
        try:
            _, options = _options("", {"provider": True, "model": True, "key": True}, rest)
        except CommandError as exc:
            # audited here, not by the dispatcher: its record would hold the raw arguments (the key)
            key = rest[rest.index("--key") + 1] if "--key" in rest[:-1] else None
            ctx.audit("agent_init", params={"api_key": key}, outcome="error", error=str(exc))
            raise
        status = agent.init(experiment, provider=options.get("provider", ""), api_key=options.get("key", ""),
                            model=options.get("model", ""), caller=ctx.mutating())
        return {"agent": _plain(status)}
    if sub == "model":
        if len(rest) != 1:
            raise CommandError("usage: agent model <id> (see `agent models`)")
        return {"agent": _plain(agent.change_model(experiment, rest[0], ctx.mutating()))}
    if sub == "reset":
        return {"agent": _plain(agent.reset(experiment, ctx.mutating()))}
    raise CommandError(f"unknown agent command {sub!r}; usage: {USAGE}")
