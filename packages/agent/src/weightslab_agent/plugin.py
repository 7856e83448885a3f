"""Hook implementations of weightslab-agent."""

from __future__ import annotations

import threading
import weakref
from typing import Any

from weightslab.hookspecs import hookimpl

# One agent per experiment configuration: the gRPC and CLI front ends share its history.
_agents: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_agents_lock = threading.Lock()


@hookimpl
def weightslab_config_sections() -> list[Any]:
    from weightslab_agent.settings import AgentSettings

    return [AgentSettings]


@hookimpl
def weightslab_query_agent(config: Any) -> Any:
    """The :class:`~weightslab_agent.agent.QueryAgent` of ``config`` (built once, then shared)."""
    from weightslab_agent.agent import QueryAgent

    with _agents_lock:
        try:
            agent = _agents.get(config) if config is not None else None
        except TypeError:  # not weak-referenceable: no sharing
            agent = None
        if agent is None:
            agent = QueryAgent.from_config(config)
            if config is not None:
                try:
                    _agents[config] = agent
                except TypeError:
                    pass
    return agent
