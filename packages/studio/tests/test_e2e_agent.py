"""The agent bar end to end in the system Chromium: a real training job (digits, TLS + mTLS +
token) with the real agent plugin, behind the real Envoy, asking a local model server that speaks
the OpenAI/OpenRouter chat-completions wire format (the agent suite's scripted server, reused).

A question shows the plan and its effect (rows matched, first ids) and changes nothing until
Apply; Apply tags exactly the previewed rows (checked in the backend) and the grid shows it;
Dismiss changes nothing; /model and /reset leave history entries; an agent without a connection
shows which settings configure one. Screenshots go to artifacts/studio/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from studio_testutil import Page as StudioPage
from studio_testutil import (
    TrainingJob,
    agent_testutil,
    call,
    chromium,
    launch_studio,
    query,
    require_browser,
    wait_for,
)
from weightslab_auth.pki import PKIPaths
from weightslab_studio import grpcweb
from weightslab_studio.launcher import StudioHandle

N_SAMPLES = 300
UI_TIMEOUT_MS = 20_000
MODEL = "openai/gpt-4o-mini"
OTHER_MODEL = "meta-llama/llama-3.3-70b-instruct"


@pytest.fixture(scope="module")
def llm() -> Iterator[Any]:
    au = agent_testutil()
    server = au.openrouter_server(au.KEY, models=[MODEL, OTHER_MODEL])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def agent_job(tmp_path_factory: pytest.TempPathFactory, environ: dict[str, str], llm: Any) -> Iterator[TrainingJob]:
    folder = tmp_path_factory.mktemp("agent-job")
    conf = agent_testutil().write_agent_config(folder / "agent-conf", provider="openrouter",
                                               openrouter_base_url=llm.base_url, openrouter_model=MODEL)
    env = {**environ, "AGENT_CONFIG_PATH": str(conf.parent), "OPENROUTER_API_KEY": agent_testutil().KEY}
    with TrainingJob(folder, env, samples=N_SAMPLES, throttle=0.05) as job:
        yield job


@pytest.fixture(scope="module")
def studio(built_ui: Path, environ: dict[str, str], envoy_path: Path, agent_job: TrainingJob) -> Iterator[StudioHandle]:
    require_browser()
    with launch_studio(environ, envoy_path, agent_job, built_ui) as handle:
        yield handle


@pytest.fixture(scope="module")
def browser(pki: PKIPaths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(pki, tmp_path_factory.mktemp("chromium-agent"), UI_TIMEOUT_MS) as context:
        yield context


def _pb() -> Any:
    from weightslab_grpc_server._generated import experiment_pb2 as pb

    return pb


@pytest.fixture
def agent(studio: StudioHandle, llm: Any) -> Any:
    """The agent connected to the local model (whatever an earlier test did), no scripted reply left."""
    llm.script.clear()
    reply = call(studio, "AgentInit", _pb().AgentInitRequest(provider="openrouter", model=MODEL).SerializeToString())
    assert reply.status == grpcweb.OK, reply
    return llm


class Page(StudioPage):
    """The Studio page plus the agent bar's input."""

    def ask(self, text: str) -> None:
        self.page.fill("#agent-input", text)
        self.page.press("#agent-input", "Enter")


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    with Page(browser) as p:
        yield p


def _tagged(studio: StudioHandle, tag: str) -> set[str]:
    """The backend's rows carrying ``tag`` (none while the tag does not exist yet)."""
    pb = _pb()
    reply = call(studio, "ListTags")
    assert reply.status == grpcweb.OK, reply
    if tag not in {t.name for t in pb.ListTagsResponse.FromString(reply.messages[0]).tags}:
        return set()
    return {r.sample_id for r in query(studio, f"has:{tag}", limit=1000).rows}


def _history_kinds(studio: StudioHandle) -> list[str]:
    pb = _pb()
    reply = call(studio, "AgentHistory", pb.AgentHistoryRequest(limit=1000).SerializeToString())
    assert reply.status == grpcweb.OK, reply
    return [e.kind for e in pb.AgentHistoryResponse.FromString(reply.messages[0]).entries]


def _tag_plan(tag: str, k: int) -> Any:
    return agent_testutil().plan_reply({"step": "top_k", "column": "loss", "k": k},
                                       {"step": "tag", "tag": tag}, explanation=f"the {k} highest losses")


def test_a_question_shows_the_plan_and_apply_tags_the_rows(studio: StudioHandle, page: Page, agent: Any,
                                                          paused: None) -> None:
    tag = "agent_review"
    agent.script.append(_tag_plan(tag, 5))
    page.live(studio.url)
    page.wait_for_selector('#agent-bar[data-agent="ready"]')
    assert MODEL in page.locator("#agent-status").inner_text()
    page.click("#sort-loss")
    expected = [r.sample_id for r in query(studio, sort=("loss", True), limit=5).rows]
    wait_for(lambda: page.evaluate("""() => Array.from(document.querySelectorAll('#grid .wl-cell'))
        .map(c => ({id: c.dataset.sampleId, r: c.getBoundingClientRect()})).filter(c => c.r.width > 0)
        .sort((a, b) => (a.r.top - b.r.top) || (a.r.left - b.r.left)).slice(0, 5).map(c => c.id)""") == expected,
             20, f"the grid in loss order {expected}")

    page.ask("tag the 5 highest-loss samples as agent_review")
    page.wait_for_selector('#agent-answer[data-state="preview"]')
    effect = page.locator("#agent-effect").inner_text()
    assert "5 rows matched" in effect, effect
    shown = page.evaluate("Array.from(document.querySelectorAll('#agent-ids .wl-agent-id')).map(e => e.textContent)")
    assert shown == expected, (shown, expected)
    steps = page.evaluate("Array.from(document.querySelectorAll('#agent-plan .wl-agent-step')).map(e => e.textContent)")
    assert steps[0] == "top 5 by loss" and steps[-1].startswith("tag") and tag in steps[-1], steps
    assert _tagged(studio, tag) == set()  # a preview changes nothing
    assert page.locator(f'#grid .wl-cell[data-sample-id="{expected[0]}"] .wl-tagtext').count() == 0
    page.shot("agent-plan")

    page.click("#agent-apply")
    page.wait_for_selector('#agent-answer[data-state="applied"]')
    assert _tagged(studio, tag) == set(expected)  # exactly the previewed rows
    for sample in expected:  # the grid shows the new tag without a reload
        page.wait_for_selector(f'#grid .wl-cell[data-sample-id="{sample}"] .wl-tagtext:has-text("{tag}")')
    assert len(agent.chats()) == 1  # Apply did not ask the model again
    page.click("#agent-history-btn")
    page.wait_for_selector('#agent-history .wl-agent-entry[data-kind="applied"]')
    kinds = page.evaluate("Array.from(document.querySelectorAll('#agent-history .wl-agent-entry')).map(e => e.dataset.kind)")
    assert {"question", "plan", "applied"} <= set(kinds), kinds
    page.shot("agent-applied")
    page.close()


def test_dismiss_changes_nothing(studio: StudioHandle, page: Page, agent: Any) -> None:
    tag = "agent_dismissed"
    agent.script.append(_tag_plan(tag, 3))
    page.live(studio.url)
    page.wait_for_selector('#agent-bar[data-agent="ready"]')
    page.ask("tag the 3 highest-loss samples as agent_dismissed")
    page.wait_for_selector('#agent-answer[data-state="preview"]')
    assert "3 rows matched" in page.locator("#agent-effect").inner_text()
    applied_before = _history_kinds(studio).count("applied")
    page.click("#agent-dismiss")
    page.wait_for_selector("#agent-answer", state="hidden")
    assert _tagged(studio, tag) == set()
    assert _history_kinds(studio).count("applied") == applied_before
    assert page.locator("#agent-apply").count() == 0
    page.close()


def test_model_and_reset_leave_history_entries_and_no_agent_shows_how_to_configure(
        studio: StudioHandle, page: Page, agent: Any) -> None:
    page.live(studio.url)
    page.wait_for_selector('#agent-bar[data-agent="ready"]')
    page.click("#agent-history-btn")
    # /model lists the provider's models; picking one changes it
    page.click("#agent-model-btn")
    page.wait_for_selector(f'#agent-models .wl-agent-model[data-model="{OTHER_MODEL}"]')
    assert page.locator(f'#agent-models .wl-agent-model.wl-current[data-model="{MODEL}"]').count() == 1
    page.shot("agent-models")
    page.click(f'#agent-models .wl-agent-model[data-model="{OTHER_MODEL}"]')
    page.wait_for_selector(f'#agent-status:has-text("{OTHER_MODEL}")')
    page.wait_for_selector('#agent-history .wl-agent-entry[data-kind="model"]')
    assert "model_change" in _history_kinds(studio)
    # /reset drops the connection: with the provider openrouter the agent is then unconfigured
    page.ask("/reset")
    page.wait_for_selector('#agent-bar[data-agent="unconfigured"]')
    page.wait_for_selector('#agent-history .wl-agent-entry[data-kind="reset"]')
    assert "reset" in _history_kinds(studio)
    page.click("#agent-howto-more summary")
    howto = page.locator("#agent-howto").inner_text()
    for setting in ("OPENROUTER_API_KEY", "AGENT_CONFIG_PATH", "agent.provider", "/init"):
        assert setting in howto, (setting, howto)
    page.shot("agent-reset")
    # a fresh page finds the agent unconfigured and says so at once
    page.reload()
    page.wait_for_selector('#agent-bar[data-agent="unconfigured"]')
    page.wait_for_selector("#agent-howto:visible")
    page.shot("agent-not-configured")
    # /init connects again (the key comes from OPENROUTER_API_KEY on the training side)
    page.ask("/init openrouter")
    page.wait_for_selector('#agent-bar[data-agent="ready"]')
    page.wait_for_selector("#agent-howto", state="hidden")
    assert "connect" in _history_kinds(studio)
    page.close()


def test_sandbox_shows_the_agent_read_only(built_ui: Path, environ: dict[str, str], envoy_path: Path,
                                           agent_job: TrainingJob, browser: Any, agent: Any) -> None:
    with launch_studio(environ, envoy_path, agent_job, built_ui, sandbox=True) as handle:
        page = Page(browser)
        page.live(handle.url)
        page.wait_for_selector('#agent-bar[data-agent="ready"]')  # the health probe is a read
        assert page.locator("#agent-input").is_disabled()
        assert page.locator("#agent-bar .wl-write").count() == 0  # no Ask, no /model
        page.click("#agent-history-btn")  # the history is a read too
        page.wait_for_selector("#agent-history .wl-agent-entry")
        page.shot("agent-sandbox")
        page.close()
