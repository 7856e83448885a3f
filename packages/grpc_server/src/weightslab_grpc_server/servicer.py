"""``weightslab.v1.ExperimentService``: a thin translation layer over the core operations.

Each handler (one module per area under :mod:`weightslab_grpc_server.handlers`) turns the
request message into a typed core request, calls the operation in
:mod:`weightslab.operations` and turns the typed result into the response message. The
operations validate (``InvalidRequest`` names the field), lock (one bounded wait,
``WL_LOCK_TIMEOUT_SECONDS``) and audit; :func:`~weightslab_grpc_server.errors.classify` is
the one place exceptions become status codes. A request that cannot be parsed is
``INVALID_ARGUMENT``. Nothing a client sends is evaluated as code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from weightslab.audit import AuditLog, get_audit_log

from weightslab_grpc_server._generated import experiment_pb2 as pb
from weightslab_grpc_server.errors import classify, invalid
from weightslab_grpc_server.handlers._base import caller_of
from weightslab_grpc_server.handlers.agent import AgentHandlers
from weightslab_grpc_server.handlers.checkpoints import CheckpointsHandlers
from weightslab_grpc_server.handlers.control import ControlHandlers
from weightslab_grpc_server.handlers.curves import CurvesHandlers
from weightslab_grpc_server.handlers.edits import EditsHandlers
from weightslab_grpc_server.handlers.evaluation import EvaluationHandlers
from weightslab_grpc_server.handlers.samples import SamplesHandlers

log = logging.getLogger("weightslab.grpc")

SERVICE_NAME = "weightslab.v1.ExperimentService"
SERVICE_DESCRIPTOR = pb.DESCRIPTOR.services_by_name["ExperimentService"]
MAX_MESSAGE_DETAILS = 4000


class ExperimentServicer(ControlHandlers, CurvesHandlers, SamplesHandlers, EditsHandlers, EvaluationHandlers,
                         CheckpointsHandlers, AgentHandlers):
    """Handlers of ``weightslab.v1.ExperimentService``; state lives in the experiment.

    One instance serves every (re)start of the server, so a restart keeps it (and the
    experiment) intact. Register it with :meth:`generic_handler`.
    """

    def __init__(self, experiment: Any, *, audit: AuditLog | None = None, pm: Any = None) -> None:
        self.experiment = experiment
        self.audit = audit if audit is not None else get_audit_log(experiment)
        self.pm = pm if pm is not None else getattr(experiment, "pm", None)

    def generic_handler(self) -> grpc.GenericRpcHandler:
        handlers: dict[str, grpc.RpcMethodHandler] = {}
        for method in SERVICE_DESCRIPTOR.methods:
            impl = getattr(self, method.name)
            request_cls = getattr(pb, method.input_type.name)
            response_cls = getattr(pb, method.output_type.name)
            if method.server_streaming:
                handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                    self._streaming(method.name, request_cls, impl),
                    response_serializer=response_cls.SerializeToString)
            else:
                handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                    self._unary(method.name, request_cls, impl),
                    response_serializer=response_cls.SerializeToString)
        return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)

    @staticmethod
    def _parse(request_cls: Any, raw: Any) -> Any:
        if not isinstance(raw, bytes):
            raise invalid(f"request: expected a serialized {request_cls.DESCRIPTOR.full_name}")
        try:
            return request_cls.FromString(raw)
        except (DecodeError, ValueError, RecursionError) as exc:
            raise invalid(f"request: not a valid {request_cls.DESCRIPTOR.full_name} message ({exc})") from None

    def _unary(self, name: str, request_cls: Any, impl: Callable[..., Any]) -> Callable[..., Any]:
        def handler(raw: bytes, context: grpc.ServicerContext) -> Any:
            try:
                return impl(self._parse(request_cls, raw), context)
            except Exception as exc:
                self._abort(name, exc, context)

        handler.__name__ = name
        return handler

    def _streaming(self, name: str, request_cls: Any, impl: Callable[..., Any]) -> Callable[..., Any]:
        def handler(raw: bytes, context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                yield from impl(self._parse(request_cls, raw), context)
            except Exception as exc:
                self._abort(name, exc, context)

        handler.__name__ = name
        return handler

    def _abort(self, name: str, exc: Exception, context: grpc.ServicerContext) -> None:
        code, message = self.classify(name, exc)
        if len(message) > MAX_MESSAGE_DETAILS:
            message = message[:MAX_MESSAGE_DETAILS] + "..."
        context.abort(getattr(grpc.StatusCode, code, grpc.StatusCode.UNKNOWN), message)

    @staticmethod
    def classify(name: str, exc: BaseException, *, log_internal: bool = True) -> tuple[str, str]:
        """``(status code name, message)`` of an exception raised by handler ``name``."""
        code, message = classify(exc)
        if code == "INTERNAL":
            if log_internal:
                log.error("%s failed unexpectedly", name, exc_info=(type(exc), exc, exc.__traceback__))
            message = f"internal error in {name} ({type(exc).__name__}); see the server log"
        return code, message


__all__ = ["SERVICE_DESCRIPTOR", "SERVICE_NAME", "ExperimentServicer", "caller_of"]
