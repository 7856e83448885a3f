"""Evaluation passes: start, status, cancel."""

from __future__ import annotations

import grpc
from weightslab.operations import evaluation

from weightslab_grpc_server._generated import experiment_pb2 as pb
from weightslab_grpc_server.convert import to_json
from weightslab_grpc_server.handlers._base import HandlerBase


def _status(s: evaluation.EvaluationStatus) -> pb.EvaluationStatus:
    return pb.EvaluationStatus(state=s.state, progress=s.progress, split=s.split, metrics=s.metrics,
                               message=s.message, details_json=to_json(s.details), id=s.id, eval_fn=s.eval_fn)


class EvaluationHandlers(HandlerBase):
    def StartEvaluation(self, request: pb.StartEvaluationRequest,
                        context: grpc.ServicerContext) -> pb.EvaluationStatus:
        return _status(evaluation.start_evaluation(self.experiment, evaluation.StartEvaluationRequest(
            split=request.split, eval_fn=request.eval_fn, tags=tuple(request.tags),
            max_steps=request.max_steps if request.HasField("max_steps") else None,
            resume_after=request.resume_after if request.HasField("resume_after") else None,
            include_discarded=request.include_discarded, batch_size=request.batch_size, model=request.model),
            self.caller(context)))

    def GetEvaluationStatus(self, request: pb.GetEvaluationStatusRequest,
                            context: grpc.ServicerContext) -> pb.EvaluationStatus:
        return _status(evaluation.evaluation_status(self.experiment))

    def CancelEvaluation(self, request: pb.CancelEvaluationRequest,
                         context: grpc.ServicerContext) -> pb.EvaluationStatus:
        return _status(evaluation.cancel_evaluation(self.experiment, self.caller(context)))
