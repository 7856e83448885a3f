"""Curves (cursor, range, downsampling), break-by-slices, per-sample trajectories."""

from __future__ import annotations

import grpc
from weightslab.operations import curves

from weightslab_grpc_server._generated import experiment_pb2 as pb
from weightslab_grpc_server.convert import to_json
from weightslab_grpc_server.handlers._base import HandlerBase


def _series(out: pb.CurveSeries, series: curves.CurveSeries) -> None:
    out.signal, out.split, out.branch = series.signal, series.split, series.branch
    out.total_points, out.downsampled = series.total_points, series.downsampled
    out.points.extend(pb.CurvePoint(step=s, value=v, seq=q)
                      for s, v, q in zip(series.steps, series.values, series.seqs, strict=True))


class CurvesHandlers(HandlerBase):
    def GetCurves(self, request: pb.GetCurvesRequest, context: grpc.ServicerContext) -> pb.GetCurvesResponse:
        result = curves.get_curves(self.experiment, curves.CurvesRequest(
            signals=tuple(request.signals), since_seq=request.since_seq, split=request.split, branch=request.branch,
            min_step=request.min_step if request.HasField("min_step") else None,
            max_step=request.max_step if request.HasField("max_step") else None, max_points=request.max_points))
        response = pb.GetCurvesResponse(next_seq=result.next_seq, branches=list(result.branches))
        for series in result.series:
            _series(response.series.add(), series)
        for m in result.markers:
            response.markers.add(step=m.step, kind=m.kind, text=m.text, branch=m.branch,
                                 details_json=to_json(m.details))
        return response

    def BreakBySlices(self, request: pb.BreakBySlicesRequest,
                      context: grpc.ServicerContext) -> pb.BreakBySlicesResponse:
        result = curves.break_by_slices(self.experiment, curves.BreakBySlicesRequest(
            signal=request.signal, tags=tuple(request.tags), split=request.split, branches=tuple(request.branches)))
        response = pb.BreakBySlicesResponse(matched_samples=result.matched_samples, max_points=result.max_points)
        for series in result.series:
            _series(response.series.add(), series)
        return response

    def GetTrajectory(self, request: pb.GetTrajectoryRequest,
                      context: grpc.ServicerContext) -> pb.GetTrajectoryResponse:
        result = curves.trajectory(self.experiment, curves.TrajectoryRequest(
            sample_id=request.sample_id, split=request.split, signals=tuple(request.signals),
            max_points=request.max_points))
        response = pb.GetTrajectoryResponse(sample_id=result.sample_id, split=result.split)
        for t in result.trajectories:
            response.trajectories.add(signal=t.signal, steps=t.steps, values=t.values, branches=t.branches)
        return response
