"""The typed plugin contract: hookspecs name their types, implementations are checked against them.

A renamed hook parameter or Protocol method must fail here (or in the plugin's own contract
test), not in production.
"""

from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path
from typing import Any

import pluggy
import pytest
from pydantic import TypeAdapter, ValidationError
from weightslab import contracts, hookspecs, security, store
from weightslab.contracts import AgentAnswer, QueryAgent, ServiceHandle, conformance
from weightslab.hookspecs import hookimpl
from weightslab.plugins import create_plugin_manager
from weightslab.store import MemorySampleStore, SampleStore

SPECS = {name: fn for name, fn in vars(hookspecs).items() if name.startswith("weightslab_") and callable(fn)}
FIRST_RESULT = {name for name, fn in SPECS.items() if getattr(fn, "weightslab_spec", {}).get("firstresult")}
DOCS = Path(__file__).resolve().parents[3] / "docs" / "plugins.md"


def _namespace() -> dict[str, Any]:
    from weightslab import config, experiment

    return {**vars(typing), **vars(contracts), **vars(security), **vars(store), "Config": config.Config,
            "SettingsSection": config.SettingsSection, "Experiment": experiment.Experiment}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hookspec_is_typed(name: str) -> None:
    fn = SPECS[name]
    hints = typing.get_type_hints(fn, globalns=_namespace())  # every annotation resolves to a real type
    params = inspect.signature(fn).parameters
    assert set(params) | {"return"} == set(hints), f"{name}: every argument and the return value need a type"
    for arg, hint in hints.items():
        assert hint is not Any, f"{name}: {arg} is typed Any; name a concrete type or a Protocol"
    doc = inspect.getdoc(fn) or ""
    if name in FIRST_RESULT:
        assert "first result" in doc.lower(), f"{name} is firstresult: its docstring must say so"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_is_documented(name: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = re.search(rf"^### `{name}\((.*?)\)`$(.*?)(?=^### |\Z)", text, re.M | re.S)
    assert section, f"docs/plugins.md has no '### `{name}(...)`' section"
    args, body = section.group(1), section.group(2)
    assert [a.strip() for a in args.split(",") if a.strip()] == list(inspect.signature(SPECS[name]).parameters)
    assert "```python" in body and "@hookimpl" in body, f"{name}: the docs need an example implementation"
    assert ("First result" in body) == (name in FIRST_RESULT), f"{name}: the docs must say whether it is firstresult"


def test_installed_plugins_match_the_hookspecs() -> None:
    # Registration validates every hookimpl's argument names against its spec; check_pending
    # fails for an implementation of a hook that has no spec (a misspelled or removed hook).
    pm = create_plugin_manager({})
    names = {name for name, plugin in pm.list_name_plugin() if plugin is not None}
    assert "core" in names
    pm.check_pending()


def test_a_renamed_hook_argument_fails_registration() -> None:
    class Renamed:
        @hookimpl
        def weightslab_step_end(self, experiment: Any, steps: int) -> None: ...

    pm = pluggy.PluginManager("weightslab")
    pm.add_hookspecs(hookspecs)
    with pytest.raises(pluggy.PluginValidationError, match="steps"):
        pm.register(Renamed())


def test_an_unknown_hook_fails_check_pending() -> None:
    class Misspelled:
        @hookimpl
        def weightslab_step_ended(self, experiment: Any) -> None: ...

    pm = pluggy.PluginManager("weightslab")
    pm.add_hookspecs(hookspecs)
    pm.register(Misspelled())
    with pytest.raises(pluggy.PluginValidationError, match="weightslab_step_ended"):
        pm.check_pending()


def test_the_real_store_implements_the_store_protocol() -> None:
    assert conformance(MemorySampleStore(), SampleStore) == []


class _GoodAgent:
    def query(self, question: str, *, preview: bool = False, experiment: Any = None) -> AgentAnswer:
        return {"plan": None, "answer": question, "applied": False, "matched": 0, "sample_ids": []}

    def health(self) -> dict[str, Any]:
        return {"available": True, "initialized": False}

    def init(self, provider: str | None = None, api_key: str | None = None, model: str | None = None) -> Any:
        return self.health()

    def models(self) -> dict[str, Any]:
        return {"current": "", "models": []}

    def change_model(self, model: str) -> Any:
        return self.health()

    def reset(self) -> Any:
        return self.health()

    def history(self, limit: int = 100) -> list[Any]:
        return []


def test_conformance_accepts_an_implementation_and_names_each_problem() -> None:
    assert conformance(_GoodAgent(), QueryAgent) == [] and isinstance(_GoodAgent(), QueryAgent)

    class Renamed(_GoodAgent):
        def query(self, text: str, *, preview: bool = False, experiment: Any = None) -> AgentAnswer:  # type: ignore[override]
            return super().query(text, preview=preview, experiment=experiment)

    class Positional(_GoodAgent):
        def history(self, limit: int) -> list[Any]:  # type: ignore[override]
            return []

    class NoReset(_GoodAgent):
        reset = None  # type: ignore[assignment]

    assert conformance(Renamed(), QueryAgent) == ["query(): no parameter 'question'",
                                                  "query(): extra required parameter 'text'"]
    assert conformance(Positional(), QueryAgent) == ["history(): 'limit' must be optional"]
    assert conformance(NoReset(), QueryAgent) == ["reset is not callable"]
    assert conformance(object(), ServiceHandle) == ["missing stop"]


def test_agent_results_are_checked_against_their_typed_dicts() -> None:
    answer = TypeAdapter(AgentAnswer)
    answer.validate_python(_GoodAgent().query("why?"))
    with pytest.raises(ValidationError, match="matched"):
        answer.validate_python({"plan": None, "matched": "many"})


def test_conformance_checks_named_methods_of_a_concrete_class() -> None:
    from weightslab.evaluation import EvaluationController

    class Double:
        def start(self, split: str | None = None, *, tags: Any = None, max_steps: int | None = None,
                  resume_after: bool | None = None, eval_fn: str | None = None, include_discarded: bool = False,
                  batch_size: int | None = None, model: str | None = None) -> dict[str, Any]:
            return {}

        def status(self) -> dict[str, Any]:
            return {}

    assert conformance(Double(), EvaluationController, only=("start", "status")) == []
    assert conformance(Double(), EvaluationController, only=("start", "cancel")) == ["missing cancel"]
    with pytest.raises(ValueError, match="not a Protocol"):
        conformance(Double(), EvaluationController)
    with pytest.raises(ValueError, match="no nope"):
        conformance(Double(), EvaluationController, only=("nope",))
