"""Checkpoints: list, save, restore."""

from __future__ import annotations

import grpc
from weightslab.operations import checkpoints

from weightslab_grpc_server._generated import experiment_pb2 as pb
from weightslab_grpc_server.convert import to_json
from weightslab_grpc_server.handlers._base import HandlerBase


def _checkpoint(c: checkpoints.Checkpoint) -> pb.Checkpoint:
    return pb.Checkpoint(id=c.id, step=c.step, branch=c.branch, created_at=c.created_at, note=c.note,
                         details_json=to_json(c.details), parent_branch=c.parent_branch, reason=c.reason)


class CheckpointsHandlers(HandlerBase):
    def ListCheckpoints(self, request: pb.ListCheckpointsRequest,
                        context: grpc.ServicerContext) -> pb.ListCheckpointsResponse:
        items = checkpoints.list_checkpoints(self.experiment, request.branch)
        return pb.ListCheckpointsResponse(checkpoints=[_checkpoint(c) for c in items])

    def SaveCheckpoint(self, request: pb.SaveCheckpointRequest, context: grpc.ServicerContext) -> pb.Checkpoint:
        return _checkpoint(checkpoints.save_checkpoint(self.experiment, request.note, self.caller(context)))

    def RestoreCheckpoint(self, request: pb.RestoreCheckpointRequest,
                          context: grpc.ServicerContext) -> pb.Checkpoint:
        target = request.WhichOneof("target")
        return _checkpoint(checkpoints.restore_checkpoint(self.experiment, checkpoints.RestoreRequest(
            checkpoint_id=request.checkpoint_id if target == "checkpoint_id" else None,
            step=request.step if target == "step" else None, branch=request.branch, force=request.force,
            restore_hyperparameters=request.restore_hyperparameters
            if request.HasField("restore_hyperparameters") else True), self.caller(context)))
