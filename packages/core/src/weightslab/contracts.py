"""The typed contract between the core and plugins: what hooks return, as Protocols and types.

``weightslab.hookspecs`` names these types in its signatures and ``docs/plugins.md`` documents
them. A plugin (or a test double) that returns one of them should pass :func:`conformance`
against the Protocol, so that a renamed method or parameter fails a test rather than a user.
The sample-store Protocol lives with the in-memory store in :mod:`weightslab.store`; the
server-security result in :mod:`weightslab.security`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from typing_extensions import TypedDict  # pydantic validates these TypedDicts on Python 3.11 too

Preview = tuple[bytes, str]
"""What ``weightslab_preview`` returns: ``(image bytes, mime type)``, e.g. ``(png, "image/png")``."""


@runtime_checkable
class ServiceHandle(Protocol):
    """What ``weightslab_serve`` returns: a running service. ``stop()`` is idempotent and called
    once at shutdown (and by whoever restarts the service, e.g. the watchdog)."""

    def stop(self) -> None: ...


@runtime_checkable
class CliCommand(Protocol):
    """What ``weightslab_cli_commands`` returns items of: a ``click`` command (or group); ``name``
    is the subcommand's name (``weightslab <name>``)."""

    name: str | None

    def main(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class GrpcInterceptor(Protocol):
    """An item of ``weightslab_grpc_interceptors``: a ``grpc.ServerInterceptor``."""

    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any: ...


class AgentAnswer(TypedDict, total=False):
    """What :meth:`QueryAgent.query` returns (JSON-able)."""

    plan: dict[str, Any] | None  # the structured query plan; None when the agent only answered
    plan_text: str  # the plan in words
    answer: str  # the agent's reply to show the user
    applied: bool  # the plan's edits were applied (never with preview=True)
    matched: int  # rows the plan matched
    sample_ids: list[str]  # matched sample ids (may be a prefix of them)
    dry_run: bool  # an edit was previewed only; nothing changed
    plan_id: str | None  # id of a previewed edit, to apply it (``query(..., apply=True, plan_id=...)``)


class AgentStatus(TypedDict, total=False):
    """What :meth:`QueryAgent.health`, ``init``, ``change_model`` and ``reset`` return."""

    available: bool  # a provider is reachable
    initialized: bool  # a provider and model are configured
    provider: str
    model: str
    message: str  # human-readable state or error (never an API key)


class AgentModel(TypedDict, total=False):
    id: str
    name: str
    description: str


class AgentModels(TypedDict):
    """What :meth:`QueryAgent.models` returns."""

    current: str
    models: list[AgentModel]


class AgentHistoryEntry(TypedDict, total=False):
    kind: str  # "question" | "connect" | "model_change" | "reset" | ...
    text: str
    time: float


@runtime_checkable
class QueryAgent(Protocol):
    """What ``weightslab_query_agent`` returns: the natural-language query agent.

    ``query`` turns a question into a plan over the experiment's query engine. Edits are
    previewed first (``dry_run``, ``plan_id``); an agent may accept the optional keywords
    ``apply`` and ``plan_id`` (apply a previewed plan through the core edit operation) and
    ``caller`` (the audit identity of who asks): front ends pass them only where accepted.
    Every method may raise ``ValueError`` (bad input, message naming the field) or
    ``ConnectionError`` (provider down).
    """

    def query(self, question: str, *, preview: bool = False, experiment: Any = None) -> AgentAnswer: ...

    def health(self) -> AgentStatus: ...

    def init(self, provider: str | None = None, api_key: str | None = None,
             model: str | None = None) -> AgentStatus: ...

    def models(self) -> AgentModels: ...

    def change_model(self, model: str) -> AgentStatus: ...

    def reset(self) -> AgentStatus: ...

    def history(self, limit: int = 100) -> list[AgentHistoryEntry]: ...


def _protocol_members(protocol: type) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for klass in reversed(protocol.__mro__):
        if klass in (object, Protocol) or not getattr(klass, "_is_protocol", False):
            continue
        for name in getattr(klass, "__annotations__", {}):
            members[name] = None
        for name, value in vars(klass).items():
            if callable(value) and not name.startswith("_"):
                members[name] = value
    return members


def _signature_problems(name: str, expected: Callable[..., Any], actual: Any) -> list[str]:
    try:
        want = inspect.signature(expected)
        have = inspect.signature(actual)
    except (TypeError, ValueError):
        return []
    want_params = [p for p in want.parameters.values() if p.name != "self"]
    params = have.parameters
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    var_pos = any(p.kind is p.VAR_POSITIONAL for p in params.values())
    problems = []
    for p in want_params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        got = params.get(p.name)
        if got is None:
            if not (var_kw and (p.kind is p.KEYWORD_ONLY or var_pos)):
                problems.append(f"{name}(): no parameter {p.name!r}")
            continue
        if p.kind is p.KEYWORD_ONLY and got.kind is got.POSITIONAL_ONLY:
            problems.append(f"{name}(): {p.name!r} must be accepted by keyword")
        if p.kind is p.POSITIONAL_OR_KEYWORD and got.kind is got.KEYWORD_ONLY:
            problems.append(f"{name}(): {p.name!r} must be accepted by position")
        if p.default is not p.empty and got.default is got.empty:
            problems.append(f"{name}(): {p.name!r} must be optional")
    known = {p.name for p in want_params}
    for extra in params.values():
        if extra.name not in known and extra.name != "self" and extra.default is extra.empty \
                and extra.kind not in (extra.VAR_POSITIONAL, extra.VAR_KEYWORD):
            problems.append(f"{name}(): extra required parameter {extra.name!r}")
    return problems


def conformance(obj: Any, spec: type, *, only: Iterable[str] | None = None) -> list[str]:
    """What keeps ``obj`` from implementing ``spec``: missing attributes or methods, and
    parameters that are missing, renamed, required where ``spec`` has a default, or passed
    differently (by keyword / by position). Empty when it conforms.

    ``spec`` is a Protocol (every member is checked) or a concrete class whose methods named in
    ``only`` are checked (a test double standing in for part of a real class). Return values are
    not checked here (TypedDict results can be validated with ``pydantic.TypeAdapter``).
    """
    if getattr(spec, "_is_protocol", False) and only is None:
        members = _protocol_members(spec)
    elif only is not None:
        members = {name: getattr(spec, name, None) for name in only}
        missing = [name for name, value in members.items() if value is None]
        if missing:
            raise ValueError(f"only: {spec.__name__} has no {', '.join(missing)}")
    else:
        raise ValueError(f"spec: {spec.__name__} is not a Protocol; name the methods to check with only=")
    problems = []
    for name, expected in members.items():
        if not hasattr(obj, name):
            problems.append(f"missing {name}")
            continue
        if expected is not None:
            actual = getattr(obj, name)
            if not callable(actual):
                problems.append(f"{name} is not callable")
                continue
            problems.extend(_signature_problems(name, expected, actual))
    return problems


__all__ = ["AgentAnswer", "AgentHistoryEntry", "AgentModel", "AgentModels", "AgentStatus", "CliCommand",
           "GrpcInterceptor", "Preview", "QueryAgent", "ServiceHandle", "conformance"]
