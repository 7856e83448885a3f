"""The query agent: a question becomes a validated plan, run through the core query engine.

Reads (select, aggregate) run at once. An action (tag, untag, discard, restore) is always a
dry run first: the answer shows the plan, the rows it would touch and a ``plan_id``; only an
explicit :meth:`QueryAgent.apply` (CLI ``ask --apply``, gRPC apply flag) changes the table, on
exactly the previewed samples, through the core edit operation with an audit record carrying the question.

The model's output is parsed as JSON and validated into :class:`~weightslab_agent.plan.Plan`;
nothing it says is ever executed as code. A plan that fails validation (bad JSON, unknown
column, type error) is sent back once with the error; a second failure is reported.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from weightslab.query import QueryError, describe_validation_error

from weightslab_agent.agent_config import AgentConfig, ConfigFile, load_agent_config, training_script_dir
from weightslab_agent.apply import SampleKeys, apply_edit, sample_keys
from weightslab_agent.execute import Outcome, plan_text, row_dicts, validate
from weightslab_agent.history import History
from weightslab_agent.plan import ClarifyStep, OutOfScopeStep, Plan, plan_json_schema
from weightslab_agent.prompt import build_messages, describe_table, retry_message
from weightslab_agent.providers import (
    OLLAMA_CHAT_TIMEOUT,
    OllamaProvider,
    OpenRouterProvider,
    Provider,
    ProviderError,
)

log = logging.getLogger("weightslab.agent")

try:  # the core's "not possible now" error, so every front end answers FAILED_PRECONDITION
    from weightslab.operations import Unavailable as _NotReadyBase
except ImportError:  # pragma: no cover - older core
    _NotReadyBase = RuntimeError  # type: ignore[assignment,misc,unused-ignore]

MAX_QUESTION = 10_000
MAX_PENDING = 20
MAX_IDS = 1000


class AgentNotReady(_NotReadyBase):
    """No provider is set up (e.g. OpenRouter chosen but no key): says how to set one up."""


class PlanError(ValueError):
    """The model's output could not be turned into a valid plan (after one retry)."""


@dataclass(frozen=True)
class Answer:
    """What a question (or an apply) returns: the plan echoed back and its effect."""

    question: str
    kind: str
    plan: dict[str, Any]
    plan_text: str
    answer: str
    applied: bool = False
    dry_run: bool = False
    matched: int = 0
    changed: int | None = None
    sample_ids: tuple[str, ...] = ()
    rows: tuple[dict[str, Any], ...] = ()
    groups: tuple[dict[str, Any], ...] = ()
    plan_id: str | None = None
    provider: str = ""
    model: str = ""
    retries: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "kind": self.kind, "plan": self.plan, "plan_text": self.plan_text,
                "answer": self.answer, "applied": self.applied, "dry_run": self.dry_run, "matched": self.matched,
                "changed": self.changed, "sample_ids": list(self.sample_ids), "rows": list(self.rows),
                "groups": list(self.groups), "plan_id": self.plan_id, "provider": self.provider,
                "model": self.model, "retries": self.retries, **({"details": self.details} if self.details else {})}


@dataclass(frozen=True)
class _Pending:
    question: str
    plan: Plan
    action: str
    tag: str | None
    value: str | None
    keys: SampleKeys  # split -> the sample ids the preview showed
    experiment_id: int


class QueryAgent:
    """One agent per experiment configuration (shared by the gRPC and CLI front ends)."""

    def __init__(self, agent_config: AgentConfig | None = None, *, config_file: ConfigFile | None = None,
                 env_api_key: str | None = None, ollama_timeout: float | None = None) -> None:
        self.settings = agent_config or AgentConfig()
        self.config_file = config_file or ConfigFile(None, "none")
        # OPENROUTER_API_KEY (environment or .env) wins over the YAML key.
        yaml_key = self.settings.openrouter_api_key.get_secret_value() if self.settings.openrouter_api_key else None
        self._configured_key = env_api_key or yaml_key
        self._ollama_timeout = ollama_timeout
        self._lock = threading.RLock()
        self._history = History()
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._preferred: str = self.settings.provider
        self._local: Provider | None = None
        self._cloud: Provider | None = None
        if self.settings.provider == "ollama" or self.settings.fallback_to_local:
            self._local = self._make_ollama(self.settings.ollama_model)
        if self.settings.provider == "openrouter" and self._configured_key:
            self._cloud = self._make_openrouter(self._configured_key, self.settings.openrouter_model)

    @classmethod
    def from_config(cls, config: Any) -> QueryAgent:
        """Build from the experiment's :class:`~weightslab.config.Config` (``agent`` section) and
        the ``agent_config.yaml`` the lookup finds."""
        section = config.get("agent") if config is not None else None
        config_dir = getattr(section, "agent_config_path", None)
        env_key = getattr(section, "openrouter_api_key", None)
        settings, found = load_agent_config(Path(config_dir) if config_dir else None, script_dir=_script_root())
        return cls(settings, config_file=found, env_api_key=env_key, ollama_timeout=_ollama_timeout(config))

    # -- providers ---------------------------------------------------------------------
    def _make_ollama(self, model: str) -> Provider:
        if self._ollama_timeout:
            return OllamaProvider(self.settings.ollama_url, model, timeout=self._ollama_timeout)
        return OllamaProvider(self.settings.ollama_url, model)

    def _make_openrouter(self, key: str, model: str) -> Provider:
        return OpenRouterProvider(self.settings.openrouter_base_url, model, key,
                                  timeout=self.settings.openrouter_request_timeout)

    def _chain(self) -> list[Provider]:
        """Providers to try, preferred first; local only as configured fallback."""
        with self._lock:
            cloud, local, preferred = self._cloud, self._local, self._preferred
        if preferred == "openrouter":
            chain = [p for p in (cloud,) if p is not None]
            if self.settings.fallback_to_local and local is not None:
                chain.append(local)
            return chain
        return [local] if local is not None else []

    def _active(self) -> Provider | None:
        chain = self._chain()
        return chain[0] if chain else None

    def _require_active(self) -> Provider:
        provider = self._active()
        if provider is None:
            raise AgentNotReady("agent not initialised: run `agent init` with an OpenRouter key (or set "
                                "OPENROUTER_API_KEY), or set agent.provider: ollama in agent_config.yaml")
        return provider

    # -- lifecycle ---------------------------------------------------------------------
    def status(self, probe: bool = False) -> dict[str, Any]:
        provider = self._active()
        details: dict[str, Any] = {"config_file": str(self.config_file.path) if self.config_file.path else None,
                                   "config_origin": self.config_file.origin,
                                   "fallback_to_local": self.settings.fallback_to_local,
                                   "preferred": self._preferred,
                                   "local": self._local.model if self._local is not None else None}
        out: dict[str, Any] = {"initialized": provider is not None,
                               "provider": provider.name if provider else "", "model": provider.model if provider else ""}
        if not probe:
            out.update(available=provider is not None, message="", details=details)
            return out
        if provider is None:
            out.update(available=False, details=details,
                       message="not initialised: run `agent init` (OpenRouter key + model) or configure Ollama")
            return out
        result = provider.probe()
        details["probe"] = result.details
        message = result.message
        available = result.ok
        if not result.ok and provider is not self._local and self.settings.fallback_to_local and self._local:
            local = self._local.probe()
            details["fallback_probe"] = local.details
            if local.ok:
                available = True
                message = f"{result.message}; falling back to {local.message}"
        out.update(available=available, message=message, details=details)
        return out

    def health(self) -> dict[str, Any]:
        """A real request to the active provider (and the local fallback if that one fails)."""
        return self.status(probe=True)

    def init(self, provider: str | None = None, api_key: str | None = None, model: str | None = None
             ) -> dict[str, Any]:
        """Connect a provider. OpenRouter: ``api_key`` (kept in memory only) or the configured key."""
        name = (provider or ("openrouter" if api_key else self.settings.provider)).strip().lower()
        if name not in ("ollama", "openrouter"):
            raise ValueError(f"provider={name!r}: expected ollama or openrouter")
        if name == "openrouter":
            key = api_key or self._configured_key
            if not key:
                raise ValueError("api_key: required to initialise openrouter (or set OPENROUTER_API_KEY)")
            candidate = self._make_openrouter(key, model or self.settings.openrouter_model)
            probe = candidate.probe()
            if not probe.ok and probe.details.get("kind") == "unauthorized":
                candidate.close()
                raise ProviderError("openrouter", "unauthorized", "the API key was rejected (HTTP 401/403); "
                                    "check it and run `agent init` again")
            with self._lock:
                old, self._cloud, self._preferred = self._cloud, candidate, "openrouter"
        else:
            candidate = self._make_ollama(model or (self._local.model if self._local else self.settings.ollama_model))
            probe = candidate.probe()
            with self._lock:
                old, self._local, self._preferred = self._local, candidate, "ollama"
        if old is not None:
            old.close()
        self._drop_pending()
        self._history.add("connect", f"connected to {name} ({candidate.model})", provider=name,
                         model=candidate.model, reachable=probe.ok, probe=probe.message)
        status = self.status()
        status.update(available=probe.ok, message=probe.message)
        return status

    def models(self) -> dict[str, Any]:
        provider = self._require_active()
        return {"provider": provider.name, "current": provider.model,
                "models": [m.to_dict() for m in provider.models()]}

    def change_model(self, model: str) -> dict[str, Any]:
        model = (model or "").strip()
        if not model or len(model) > 256:
            raise ValueError(f"model={model!r}: expected a model id (see `agent models`)")
        provider = self._require_active()
        with self._lock:
            previous = provider.model
            provider.model = model
        self._drop_pending()
        self._history.add("model_change", f"model {previous} → {model} ({provider.name})", provider=provider.name,
                         previous=previous, model=model)
        return self.status()

    def reset(self) -> dict[str, Any]:
        """Drop the cloud connection (and its in-memory key); a configured local provider stays."""
        with self._lock:
            cloud, self._cloud = self._cloud, None
            self._preferred = self.settings.provider if self.settings.provider == "ollama" else (
                "ollama" if self.settings.fallback_to_local else "openrouter")
            if self._preferred == "ollama" and self._local is None:
                self._local = self._make_ollama(self.settings.ollama_model)
        if cloud is not None:
            cloud.close()
        self._drop_pending()
        self._history.add("reset", "agent reset" + (" (cloud connection dropped)" if cloud is not None else ""))
        return self.status()

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The last ``limit`` entries (all when None), oldest first."""
        return [e.to_dict() for e in self._history.entries(limit)]

    def close(self) -> None:
        with self._lock:
            providers = [p for p in (self._cloud, self._local) if p is not None]
            self._cloud = self._local = None
        for p in providers:
            p.close()

    # -- questions ---------------------------------------------------------------------
    def query(self, question: str, *, experiment: Any = None, preview: bool | None = None, apply: bool = False,
              plan_id: str | None = None, caller: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Answer ``question``. Actions are previewed (``plan_id`` in the answer); with ``apply``
        the previewed plan (``plan_id``, else the one previewed for this question, else the
        latest) is applied instead — the model is not asked again."""
        if experiment is None:
            raise ValueError("experiment: the agent needs the experiment to query")
        question = (question or "").strip()
        if apply:
            return self.apply(plan_id, experiment=experiment, question=question or None, caller=caller).to_dict()
        if not question:
            raise ValueError("question: required")
        if len(question) > MAX_QUESTION:
            raise ValueError(f"question: {len(question)} characters (at most {MAX_QUESTION})")
        self._history.add("question", question)
        try:
            answer = self._answer(question, experiment)
        except Exception as exc:
            self._history.add("error", str(exc), question=question, error=type(exc).__name__)
            raise
        self._history.add("answer", answer.answer, question=question, plan=answer.plan, plan_text=answer.plan_text,
                         answer_kind=answer.kind,
                         matched=answer.matched, plan_id=answer.plan_id, provider=answer.provider)
        return answer.to_dict()

    def _answer(self, question: str, experiment: Any) -> Answer:
        chain = self._chain()
        if not chain:
            self._require_active()
        frame = experiment.frame()
        messages = build_messages(question, describe_table(frame), self._history.turns())
        schema = plan_json_schema()
        last_error: ProviderError | None = None
        for provider in chain:
            try:
                plan, outcome, retries = self._plan(provider, messages, schema, frame)
            except ProviderError as exc:
                last_error = exc
                if provider is not chain[-1]:
                    log.warning("agent provider %s failed (%s); falling back to %s", provider.name, exc.kind,
                                chain[-1].name)
                continue
            return self._describe(question, plan, outcome, frame, experiment, provider, retries)
        assert last_error is not None
        raise last_error

    def _plan(self, provider: Provider, messages: list[dict[str, str]], schema: dict[str, Any], frame: Any
              ) -> tuple[Plan, Outcome, int]:
        error = ""
        for attempt in range(2):
            reply = provider.chat(messages, schema)
            try:
                plan = parse_plan(reply)
                return plan, validate(frame, plan), attempt
            except (PlanError, QueryError) as exc:
                error = str(exc)
                log.info("agent plan rejected (attempt %d): %s", attempt + 1, error)
                messages = [*messages, {"role": "assistant", "content": reply[:20_000]}, retry_message(error)]
        raise PlanError(f"{provider.name} ({provider.model}) did not produce a valid plan after one retry: {error}")

    def _describe(self, question: str, plan: Plan, outcome: Outcome, frame: Any, experiment: Any,
                  provider: Provider, retries: int) -> Answer:
        base: dict[str, Any] = {"question": question, "kind": outcome.kind, "plan": plan.to_json_dict(),
                                "plan_text": plan_text(plan), "provider": provider.name, "model": provider.model,
                                "retries": retries}
        note = f" ({plan.explanation})" if plan.explanation else ""
        if outcome.kind == "empty":
            return Answer(answer="The plan has no steps: nothing to show or change" + note, **base)
        if outcome.kind == "clarify":
            step = plan.find(ClarifyStep)
            return Answer(answer=f"Please clarify: {step.question}", **base)
        if outcome.kind == "out_of_scope":
            step = plan.find(OutOfScopeStep)
            return Answer(answer=f"Out of scope: {step.reason}", **base)
        if outcome.kind == "aggregate":
            groups = tuple(g.to_dict() for g in outcome.groups or [])
            lines = []
            for g in groups[:20]:
                key = ", ".join(f"{k}={_fmt(v)}" for k, v in g["key"].items()) or "all"
                values = ", ".join(f"{k}={_fmt(v)}" for k, v in g["values"].items())
                lines.append(f"{key}: {values}")
            more = f" (+{len(groups) - 20} more groups)" if len(groups) > 20 else ""
            text = f"{outcome.total_groups} group(s) over {outcome.total} rows{note}:\n" + "\n".join(lines) + more
            return Answer(answer=text, matched=outcome.total, groups=groups, **base)
        ids = tuple(str(s) for s in frame.ids_at(list(outcome.rows[:MAX_IDS])))
        if outcome.kind == "select":
            rows = tuple(row_dicts(frame, outcome.rows, outcome.columns))
            text = f"{len(rows)} of {outcome.total} matching samples{note}"
            return Answer(answer=text, matched=outcome.total, sample_ids=ids, rows=rows, **base)
        target = outcome.edit
        assert target is not None
        plan_id = self._remember(_Pending(question, plan, target.action, target.tag, target.value,
                                          sample_keys(frame, target.rows), id(experiment)))
        verb = _verb(target.action, target.tag, target.value)
        text = (f"Preview: would {verb} {outcome.total} sample(s), {target.would_change} of them changed{note}. "
                f"Nothing is changed yet: apply plan {plan_id} (CLI: ask --apply {plan_id}).")
        return Answer(answer=text, dry_run=True, matched=outcome.total, changed=target.would_change,
                      sample_ids=ids, plan_id=plan_id, **base)

    def _remember(self, pending: _Pending) -> str:
        plan_id = secrets.token_hex(4)
        with self._lock:
            self._pending[plan_id] = pending
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
        return plan_id

    def _drop_pending(self) -> None:
        with self._lock:
            self._pending.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"plan_id": k, "question": p.question, "action": p.action, "rows": sum(map(len, p.keys.values()))}
                    for k, p in self._pending.items()]

    def apply(self, plan_id: str | None = None, *, experiment: Any, question: str | None = None,
              caller: Mapping[str, Any] | None = None) -> Answer:
        """Apply a previewed action on exactly the previewed rows (once; the preview is consumed)."""
        with self._lock:
            if plan_id:
                key = plan_id.strip()
                if key not in self._pending:
                    known = ", ".join(self._pending) or "none"
                    raise ValueError(f"plan_id={key!r}: no previewed plan with that id (pending: {known}); "
                                     "ask the question again to preview it")
            else:
                matches = [k for k, p in self._pending.items() if question is None or p.question == question]
                if not matches:
                    raise ValueError("nothing to apply: preview an action first (ask the question without --apply)")
                key = matches[-1]
            pending = self._pending.pop(key)
        if pending.experiment_id != id(experiment):
            raise ValueError(f"plan_id={key!r} was previewed on another experiment")
        result = apply_edit(experiment, action=pending.action, tag=pending.tag, value=pending.value,
                            keys=pending.keys, question=pending.question, plan_id=key, caller=caller)
        verb = _verb(pending.action, pending.tag, pending.value, past=True)
        text = f"Applied: {verb} {result['matched']} sample(s), {result['changed']} changed."
        self._history.add("applied", text, question=pending.question, plan_id=key, action=pending.action,
                         matched=result["matched"], changed=result["changed"])
        return Answer(question=pending.question, kind="edit", plan=pending.plan.to_json_dict(),
                      plan_text=plan_text(pending.plan), answer=text, applied=True, matched=int(result["matched"]),
                      changed=int(result["changed"]), sample_ids=tuple(result.get("sample_ids") or ()), plan_id=key)


def parse_plan(reply: str) -> Plan:
    """The model's reply as a :class:`Plan` (a ```json fence is tolerated); never evaluated."""
    text = reply.strip()
    if text.startswith("```"):
        text = text.strip("`")
        text = text[4:] if text.lower().startswith("json") else text
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PlanError(f"the reply is not JSON ({exc.args[0] if exc.args else exc})") from None
    if isinstance(data, dict) and "steps" not in data and "step" in data:
        data = {"steps": [data]}  # a lone step: small models often drop the wrapper
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(f"invalid plan: {describe_validation_error(exc)}") from None


def _verb(action: str, tag: str | None, value: str | None, *, past: bool = False) -> str:
    words = {"tag": ("tag", "tagged"), "untag": ("untag", "untagged"), "set_category": ("set", "set"),
             "clear_category": ("clear", "cleared"), "discard": ("discard", "discarded"),
             "restore": ("restore", "restored")}[action]
    verb = words[1 if past else 0]
    if action in ("tag", "untag"):
        return f"{verb} {tag!r} on"
    if action == "set_category":
        return f"{verb} {tag}={value!r} on"
    if action == "clear_category":
        return f"{verb} {tag!r} on"
    return verb


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _ollama_timeout(config: Any) -> float:
    """Per-request limit of a local model: two attempts (a plan and its one retry) must end
    before the watchdog counts the RPC as stuck (``GRPC_WATCHDOG_STUCK_SECONDS``) and restarts
    the server. A slow local model needs that threshold raised."""
    try:
        stuck = float(config["watchdog"].stuck_seconds)
    except (KeyError, TypeError, AttributeError, ValueError):
        return OLLAMA_CHAT_TIMEOUT
    return max(1.0, min(OLLAMA_CHAT_TIMEOUT, stuck * 0.45))


def _script_root() -> Path | None:
    return training_script_dir()
