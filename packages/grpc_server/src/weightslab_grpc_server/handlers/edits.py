"""Sample edits by ids or by query (tag/untag/categorical/discard/restore)."""

from __future__ import annotations

import dataclasses
from typing import Any

import grpc
from weightslab.operations import edits, labels

from weightslab_grpc_server._generated import experiment_pb2 as pb
from weightslab_grpc_server.convert import parse_json
from weightslab_grpc_server.errors import invalid
from weightslab_grpc_server.handlers._base import HandlerBase

_ACTIONS = {pb.EDIT_ACTION_TAG: "tag", pb.EDIT_ACTION_UNTAG: "untag", pb.EDIT_ACTION_SET_CATEGORY: "set_category",
            pb.EDIT_ACTION_CLEAR_CATEGORY: "clear_category", pb.EDIT_ACTION_DISCARD: "discard",
            pb.EDIT_ACTION_RESTORE: "restore"}
# Label corrections go to operations.labels (same request shape, plus `label`).
_LABEL_ACTIONS = {pb.EDIT_ACTION_RELABEL: "relabel", pb.EDIT_ACTION_RELABEL_TO_SUGGESTION: "relabel_to_suggestion",
                  pb.EDIT_ACTION_REVERT_LABEL: "revert_label"}


def _target(request: pb.EditSamplesRequest) -> tuple[tuple[str, ...] | None, Any, str]:
    """The samples an edit names: ``(ids, None, "query")`` or ``(None, query, its field)``."""
    target = request.WhichOneof("target")
    if target == "ids":
        return tuple(request.ids.ids), None, "query"
    if target == "query":
        if request.query.WhichOneof("kind") == "spec_json":
            return None, request.query.spec_json, "query.spec_json"
        return None, request.query.text, "query.text"
    return None, None, "query"


def _parsed_query(query: Any, field: str) -> Any:
    """A JSON query spec parsed (called inside ``rejecting``: a bad one is an audited INVALID_ARGUMENT)."""
    if field != "query.spec_json":
        return query
    data = parse_json(query, field)
    if not isinstance(data, dict):
        raise invalid(f"{field}: expected a JSON object (the query spec)")
    return data


class EditsHandlers(HandlerBase):
    def EditSamples(self, request: pb.EditSamplesRequest, context: grpc.ServicerContext) -> pb.EditSamplesResponse:
        if request.action in _LABEL_ACTIONS:
            return self._relabel(request, context)
        action = _ACTIONS.get(request.action, "")
        ids, query, field = _target(request)
        edit = edits.EditRequest(action=action or str(request.action), ids=ids, query=query, split=request.split,
                                 tag=request.tag, value=request.value, query_field=field, ids_field="ids.ids")
        with self.rejecting(context, "edit_samples", edit.audit_params()):
            if not action:
                raise invalid(f"action={request.action}: expected one of " + ", ".join(
                    pb.EditAction.Name(k) for k in (*_ACTIONS, *_LABEL_ACTIONS)))
            edit = dataclasses.replace(edit, query=_parsed_query(query, field))
        result = edits.edit_samples(self.experiment, edit, self.caller(context))
        return pb.EditSamplesResponse(matched=result.matched, changed=result.changed, sample_ids=result.sample_ids)

    def _relabel(self, request: pb.EditSamplesRequest, context: grpc.ServicerContext) -> pb.EditSamplesResponse:
        ids, query, field = _target(request)
        relabel = labels.RelabelRequest(
            action=_LABEL_ACTIONS[request.action], ids=ids,
            query=query, split=request.split, label=request.label if request.HasField("label") else None,
            query_field=field, ids_field="ids.ids")
        with self.rejecting(context, "relabel_samples", relabel.audit_params()):
            if request.tag or request.value:
                raise invalid(f"tag/value: not used by {relabel.action} (give `label` for relabel)")
            relabel = dataclasses.replace(relabel, query=_parsed_query(query, field))
        result = labels.relabel_samples(self.experiment, relabel, self.caller(context))
        return pb.EditSamplesResponse(matched=result.matched, changed=result.changed, sample_ids=result.sample_ids,
                                      without_suggestion=result.without_suggestion)

    def ExportLabels(self, request: pb.ExportLabelsRequest,
                     context: grpc.ServicerContext) -> pb.ExportLabelsResponse:
        result = labels.export_labels(self.experiment, labels.ExportLabelsRequest(split=request.split))
        response = pb.ExportLabelsResponse()
        for row in result.rows():
            entry = response.labels.add(id=row["id"], split=row["split"], corrected=row["corrected"], by=row["by"],
                                        at=row["at"])
            if isinstance(row["original"], int):
                entry.original = row["original"]
        return response
