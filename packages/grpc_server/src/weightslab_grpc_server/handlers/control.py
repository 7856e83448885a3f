"""Status, pause/resume/run N, hyperparameters."""

from __future__ import annotations

import math

import grpc
from weightslab.operations import control, hyperparameters, status

from weightslab_grpc_server import __version__
from weightslab_grpc_server._generated import experiment_pb2 as pb
from weightslab_grpc_server.convert import python_to_value, value_to_python
from weightslab_grpc_server.errors import invalid
from weightslab_grpc_server.handlers._base import HandlerBase, state_of


def _control(result: control.ControlResult) -> pb.ControlResponse:
    response = pb.ControlResponse(previous_state=state_of(result.previous_state), state=state_of(result.state),
                                  step=result.step, branch=result.branch)
    if result.steps_left is not None:
        response.steps_left = result.steps_left
    return response


class ControlHandlers(HandlerBase):
    def GetStatus(self, request: pb.GetStatusRequest, context: grpc.ServicerContext) -> pb.GetStatusResponse:
        s = status.get_status(self.experiment)
        response = pb.GetStatusResponse(
            name=s.name, state=state_of(s.state), step=s.step, branch=s.branch, samples=s.samples, active=s.active,
            discarded=s.discarded, steps_per_second=s.steps_per_second if math.isfinite(s.steps_per_second) else 0.0,
            root_log_dir=s.root_log_dir, waiting=s.waiting, server_version=__version__, samples_seen=s.samples_seen)
        response.splits.update(s.splits)
        response.signals.update({k: v for k, v in s.signals.items() if math.isfinite(v)})
        if s.steps_left is not None:
            response.steps_left = s.steps_left
        return response

    def Pause(self, request: pb.PauseRequest, context: grpc.ServicerContext) -> pb.ControlResponse:
        return _control(control.pause(self.experiment, self.caller(context)))

    def Resume(self, request: pb.ResumeRequest, context: grpc.ServicerContext) -> pb.ControlResponse:
        steps = request.steps if request.HasField("steps") else None
        return _control(control.resume(self.experiment, control.ResumeRequest(steps=steps), self.caller(context)))

    def GetHyperParameters(self, request: pb.GetHyperParametersRequest,
                           context: grpc.ServicerContext) -> pb.GetHyperParametersResponse:
        result = hyperparameters.get_hyperparameters(self.experiment)
        response = pb.GetHyperParametersResponse(last_error=result.last_error)
        for p in result.parameters:
            item = response.parameters.add(key=p.key)
            item.applied.CopyFrom(python_to_value(p.applied))
            if p.has_requested:
                item.requested.CopyFrom(python_to_value(p.requested))
        return response

    def SetHyperParameter(self, request: pb.SetHyperParameterRequest,
                          context: grpc.ServicerContext) -> pb.SetHyperParameterResponse:
        with self.rejecting(context, "set_hyperparameter", {"key": request.key}):
            if not request.key.strip():
                raise invalid("key: required")
            if not request.HasField("value"):
                raise invalid("value: required: set one of number, int, bool, string, json")
            value = value_to_python(request.value, "value")
        result = hyperparameters.set_hyperparameter(
            self.experiment, hyperparameters.SetHyperParameterRequest(key=request.key, value=value),
            self.caller(context))
        return pb.SetHyperParameterResponse(key=result.key, previous=python_to_value(result.previous),
                                            requested=python_to_value(result.requested))
