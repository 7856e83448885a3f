"""The query agent (``weightslab_query_agent`` hook, a :class:`~weightslab.contracts.QueryAgent`):
health, query, init, models, change model, reset, history. One agent object per experiment,
shared by every front end; results follow the TypedDicts of :mod:`weightslab.contracts`."""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from weightslab.contracts import QueryAgent
from weightslab.operations._base import SDK, Caller, InvalidRequest, Unavailable, audited, text
from weightslab.plugins import call_accepting
from weightslab.secrets import scrub

MAX_QUESTION = 10_000
MAX_HISTORY = 10_000
DEFAULT_HISTORY = 100
MAX_IDS_SHOWN = 1000


@dataclass(frozen=True)
class AgentStatus:
    available: bool
    initialized: bool
    provider: str
    model: str
    message: str
    details: dict[str, Any]


@dataclass(frozen=True)
class AgentAnswer:
    plan: Any  # the plan the agent made, echoed back
    plan_text: str
    answer: str
    applied: bool  # false in preview mode
    matched: int
    sample_ids: tuple[str, ...]
    details: dict[str, Any]


@dataclass(frozen=True)
class AgentModel:
    id: str
    name: str
    description: str


@dataclass(frozen=True)
class AgentModels:
    models: tuple[AgentModel, ...]
    current: str


@dataclass(frozen=True)
class AgentHistoryEntry:
    timestamp: str  # ISO 8601 UTC of the entry's ``time`` (empty when the agent gave none)
    kind: str  # question | answer | connect | model_change | reset ...
    text: str
    details: dict[str, Any]


_agents: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_agents_lock = threading.Lock()


def get_agent(experiment: Any) -> QueryAgent:
    """The experiment's agent, created once through the hook; :class:`Unavailable` when none."""
    with _agents_lock:
        agent = _agents.get(experiment)
        pm = getattr(experiment, "pm", None)
        if agent is None and pm is not None:
            agent = pm.hook.weightslab_query_agent(config=experiment.config)
            if agent is not None:
                _agents[experiment] = agent
    if agent is None:
        raise Unavailable(_no_agent_reason(pm))
    return agent


def _no_agent_reason(pm: Any) -> str:
    """Not installed, or installed but it built no agent (not configured, or it failed: its log says why)."""
    impls = pm.hook.weightslab_query_agent.get_hookimpls() if pm is not None else []
    if impls:
        names = ", ".join(sorted({impl.plugin_name for impl in impls}))
        return (f"the agent plugin is installed ({names}) but provides no query agent: it is not configured or "
                "could not be built (see the server log; `weightslab config show` lists the agent settings)")
    return "no query agent is installed (agent plugin not installed: pip install 'weightslab[agent]')"


def forget_agent(experiment: Any) -> None:
    """Drop the cached agent: the next call asks the hook again (e.g. after plugins changed)."""
    with _agents_lock:
        _agents.pop(experiment, None)


def _data(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"the agent returned {type(value).__name__}; expected a mapping")


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _status(value: Any) -> AgentStatus:
    data = _data(value)
    return AgentStatus(available=bool(data.get("available", True)), initialized=bool(data.get("initialized", False)),
                       provider=_str(data.get("provider")), model=_str(data.get("model")),
                       message=_str(data.get("message")), details=data)


def health(experiment: Any) -> AgentStatus:
    return _status(get_agent(experiment).health())


def ask(experiment: Any, question: str, *, preview: bool = False, apply: bool = False, plan_id: str = "",
        caller: Caller = SDK) -> AgentAnswer:
    """Ask the agent; ``apply`` (with an optional ``plan_id``) applies a previewed plan instead."""
    params: dict[str, Any] = {"question": question, "preview": preview}
    if apply:
        params.update(apply=True, plan_id=plan_id or None)
    with audited(experiment, caller, "agent_query", params) as entry:
        text(question, "question", required=not apply, max_len=MAX_QUESTION)
        text(plan_id, "plan_id", max_len=64)
        query = get_agent(experiment).query
        # apply / plan_id / caller are optional extensions of QueryAgent.query: passed only to an
        # agent whose query() accepts them (the caller names who asked in the agent's own audit records)
        data = _data(call_accepting(query, question, preview=preview, experiment=experiment,
                                    apply=apply or None, plan_id=plan_id or None, caller=caller.audit(),
                                    drop_none=True))
        ids = tuple(str(s) for s in list(data.get("sample_ids") or [])[:MAX_IDS_SHOWN])
        result = AgentAnswer(plan=data.get("plan"), plan_text=_str(data.get("plan_text")),
                             answer=_str(data.get("answer")), applied=bool(data.get("applied", False)) and not preview,
                             matched=int(data.get("matched", len(ids)) or 0), sample_ids=ids, details=data)
        entry.result = {"applied": result.applied, "matched": result.matched, "plan": result.plan}
    return result


def init(experiment: Any, *, provider: str = "", api_key: str = "", model: str = "",
         caller: Caller = SDK) -> AgentStatus:
    params = {"provider": provider or None, "model": model or None, "api_key": api_key or None}  # fingerprinted
    with audited(experiment, caller, "agent_init", params) as entry:
        text(provider, "provider", max_len=64)
        text(api_key, "api_key", max_len=4096)
        text(model, "model", max_len=1024)
        agent = get_agent(experiment)
        try:
            status = _status(agent.init(provider=provider or None, api_key=api_key or None, model=model or None))
        except Exception as exc:  # provider SDKs may echo the key: it never leaves in clear
            message = scrub(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc),
                            {"api_key": api_key})
            if isinstance(exc, (ValueError, KeyError)):
                raise InvalidRequest("", message) from None
            if isinstance(exc, ConnectionError):
                raise ConnectionError(message) from None
            raise RuntimeError(f"agent init failed ({type(exc).__name__}): {message}") from None
        entry.after = {"provider": status.provider, "model": status.model, "initialized": status.initialized}
    return status


def models(experiment: Any) -> AgentModels:
    data = _data(get_agent(experiment).models())
    out = []
    for item in list(data.get("models") or []):
        if isinstance(item, str):
            out.append(AgentModel(id=item, name=item, description=""))
        else:
            info = _data(item)
            ident = _str(info.get("id") or info.get("name"))
            out.append(AgentModel(id=ident, name=_str(info.get("name") or ident),
                                  description=_str(info.get("description"))))
    return AgentModels(models=tuple(out), current=_str(data.get("current")))


def change_model(experiment: Any, model: str, caller: Caller = SDK) -> AgentStatus:
    with audited(experiment, caller, "agent_change_model", {"model": model}) as entry:
        text(model, "model", required=True, max_len=1024)
        status = _status(get_agent(experiment).change_model(model))
        entry.after = {"model": status.model}
    return status


def reset(experiment: Any, caller: Caller = SDK) -> AgentStatus:
    with audited(experiment, caller, "agent_reset") as entry:
        status = _status(get_agent(experiment).reset())
        entry.after = {"initialized": status.initialized}
    return status


def history(experiment: Any, limit: int = 0) -> tuple[AgentHistoryEntry, ...]:
    limit = limit or DEFAULT_HISTORY
    if not 1 <= limit <= MAX_HISTORY:
        raise InvalidRequest.of("limit", limit, f"expected 0 ({DEFAULT_HISTORY}) or 1..{MAX_HISTORY}")
    entries = list(get_agent(experiment).history(limit=limit) or [])[-limit:]
    out = []
    for item in entries:
        data = _data(item)
        when = data.get("time")
        stamp = datetime.fromtimestamp(float(when), UTC).isoformat() if isinstance(when, (int, float)) else ""
        out.append(AgentHistoryEntry(timestamp=stamp, kind=_str(data.get("kind")),
                                     text=_str(data.get("text")), details=data))
    return tuple(out)
