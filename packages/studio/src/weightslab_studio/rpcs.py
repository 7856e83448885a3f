"""Every RPC of ``weightslab.v1.ExperimentService`` classified as read-only or mutating.

This is the one list the sandbox relies on: in sandbox mode Envoy's RBAC filter refuses every
method of the service that is not read-only (so a new, unclassified RPC is refused too), and a
test checks that every RPC of the ``.proto`` is classified here exactly once.
"""

from __future__ import annotations

SERVICE = "weightslab.v1.ExperimentService"
SERVICE_PREFIX = f"/{SERVICE}/"

READ_ONLY: frozenset[str] = frozenset({
    "GetStatus", "GetHyperParameters", "GetCurves", "BreakBySlices", "QuerySamples", "GetHistogram",
    "ListSplits", "GetTrajectory", "GetThumbnail", "GetThumbnails", "ListTags", "StreamSample",
    "GetEvaluationStatus", "ListCheckpoints", "AgentHealth", "AgentModels", "AgentHistory", "ExportLabels",
})

# AgentQuery may apply the plan it makes (unless `preview`): a proxy cannot read the body, so it
# counts as mutating; the other Agent* writes change the agent's connection state.
MUTATING: frozenset[str] = frozenset({
    "Pause", "Resume", "SetHyperParameter", "EditSamples", "StartEvaluation", "CancelEvaluation",
    "SaveCheckpoint", "RestoreCheckpoint", "AgentQuery", "AgentInit", "AgentChangeModel", "AgentReset",
})


def path_of(method: str) -> str:
    """The HTTP/2 path of ``method`` (``/weightslab.v1.ExperimentService/Pause``)."""
    return SERVICE_PREFIX + method


def is_mutating(method: str) -> bool:
    """``True`` for a mutating or unknown method (unknown ones are refused in sandbox mode)."""
    return method not in READ_ONLY
