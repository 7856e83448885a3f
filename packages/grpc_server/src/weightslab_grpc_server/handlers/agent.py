"""The query agent: health, query (plan echoed back, preview), init, models, reset, history."""

from __future__ import annotations

import grpc
from weightslab.operations import agent

from weightslab_grpc_server._generated import experiment_pb2 as pb
from weightslab_grpc_server.convert import to_json
from weightslab_grpc_server.handlers._base import HandlerBase


def _status(s: agent.AgentStatus) -> pb.AgentStatus:
    return pb.AgentStatus(available=s.available, initialized=s.initialized, provider=s.provider, model=s.model,
                          message=s.message, details_json=to_json(s.details))


class AgentHandlers(HandlerBase):
    def AgentHealth(self, request: pb.AgentHealthRequest, context: grpc.ServicerContext) -> pb.AgentStatus:
        return _status(agent.health(self.experiment))

    def AgentQuery(self, request: pb.AgentQueryRequest, context: grpc.ServicerContext) -> pb.AgentQueryResponse:
        a = agent.ask(self.experiment, request.question, preview=request.preview, apply=request.apply,
                      plan_id=request.plan_id, caller=self.caller(context))
        plan_json = a.plan if isinstance(a.plan, str) else to_json(a.plan)
        plan_id = a.details.get("plan_id")
        return pb.AgentQueryResponse(plan_json=plan_json, plan_text=a.plan_text, answer=a.answer, applied=a.applied,
                                     matched=a.matched, sample_ids=a.sample_ids, details_json=to_json(a.details),
                                     plan_id=str(plan_id) if plan_id else "", dry_run=bool(a.details.get("dry_run")))

    def AgentInit(self, request: pb.AgentInitRequest, context: grpc.ServicerContext) -> pb.AgentStatus:
        return _status(agent.init(self.experiment, provider=request.provider, api_key=request.api_key,
                                  model=request.model, caller=self.caller(context)))

    def AgentModels(self, request: pb.AgentModelsRequest, context: grpc.ServicerContext) -> pb.AgentModelsResponse:
        result = agent.models(self.experiment)
        return pb.AgentModelsResponse(current=result.current, models=[
            pb.AgentModel(id=m.id, name=m.name, description=m.description) for m in result.models])

    def AgentChangeModel(self, request: pb.AgentChangeModelRequest,
                         context: grpc.ServicerContext) -> pb.AgentStatus:
        return _status(agent.change_model(self.experiment, request.model, self.caller(context)))

    def AgentReset(self, request: pb.AgentResetRequest, context: grpc.ServicerContext) -> pb.AgentStatus:
        return _status(agent.reset(self.experiment, self.caller(context)))

    def AgentHistory(self, request: pb.AgentHistoryRequest,
                     context: grpc.ServicerContext) -> pb.AgentHistoryResponse:
        entries = agent.history(self.experiment, request.limit)
        return pb.AgentHistoryResponse(entries=[
            pb.AgentHistoryEntry(timestamp=e.timestamp, kind=e.kind, text=e.text, details_json=to_json(e.details))
            for e in entries])

