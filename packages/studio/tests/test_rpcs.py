"""Every RPC of the service is classified exactly once as read-only or mutating; the sandbox's
RBAC rule is derived from that classification."""

from __future__ import annotations

from weightslab_grpc_server._generated import experiment_pb2 as pb
from weightslab_studio import rpcs
from weightslab_studio.envoy_config import sandbox_rbac


def service_methods() -> set[str]:
    service = pb.DESCRIPTOR.services_by_name["ExperimentService"]
    assert service.full_name == rpcs.SERVICE
    return {m.name for m in service.methods}


def test_every_rpc_of_the_proto_is_classified_exactly_once() -> None:
    methods = service_methods()
    assert rpcs.READ_ONLY.isdisjoint(rpcs.MUTATING)
    unclassified = methods - rpcs.READ_ONLY - rpcs.MUTATING
    assert not unclassified, f"classify these RPCs in weightslab_studio/rpcs.py: {sorted(unclassified)}"
    stale = (rpcs.READ_ONLY | rpcs.MUTATING) - methods
    assert not stale, f"no longer in the .proto: {sorted(stale)}"


def test_writes_are_mutating_and_reads_are_not() -> None:
    for name in ("Pause", "Resume", "SetHyperParameter", "EditSamples", "RestoreCheckpoint", "AgentQuery"):
        assert rpcs.is_mutating(name)
    for name in ("GetStatus", "QuerySamples", "GetThumbnails", "StreamSample", "ListTags"):
        assert not rpcs.is_mutating(name)
    assert rpcs.is_mutating("SomeFutureRpc")  # unknown = refused in sandbox mode
    assert rpcs.path_of("Pause") == "/weightslab.v1.ExperimentService/Pause"


def test_the_sandbox_rule_allows_exactly_the_read_only_paths() -> None:
    policy = sandbox_rbac()["typed_config"]["rules"]
    assert policy["action"] == "DENY"
    (rule,) = policy["policies"].values()
    prefix, negated = rule["permissions"][0]["and_rules"]["rules"]
    assert prefix == {"url_path": {"path": {"prefix": rpcs.SERVICE_PREFIX}}}
    allowed = {r["url_path"]["path"]["exact"] for r in negated["not_rule"]["or_rules"]["rules"]}
    assert allowed == {rpcs.path_of(m) for m in rpcs.READ_ONLY}
    assert not allowed & {rpcs.path_of(m) for m in rpcs.MUTATING}
