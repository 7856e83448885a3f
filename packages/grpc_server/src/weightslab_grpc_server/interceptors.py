"""Server interceptors owned by this package."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from weightslab.audit import AuditLog
from weightslab.auth_failures import AuthFailureAggregator, FailureReport, audit_fields

log = logging.getLogger("weightslab.grpc")

_DENIED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


class AuthOutcomeAuditInterceptor(grpc.ServerInterceptor):
    """Audits calls that end ``UNAUTHENTICATED``/``PERMISSION_DENIED`` (outcome ``denied``).

    Used (outermost) only when no installed interceptor offers
    ``add_auth_failure_listener`` (weightslab-auth's token interceptor does): it observes the
    status any inner auth interceptor sets, whatever plugin it comes from.
    """

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        # Rate-limited like the token interceptor's failures: per peer host, the first denial at
        # once, then one summary per interval (a denied client retrying must not flood the audit).
        self.failures = AuthFailureAggregator(self._record, transport="grpc")

    def _record(self, report: FailureReport) -> None:
        self.audit.record("auth_failure", **audit_fields(report))

    def _check(self, method: str, context: grpc.ServicerContext) -> None:
        try:
            code = context.code()
        except Exception:
            return
        if code in _DENIED:
            details = ""
            try:
                raw = context.details() or ""
                details = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            except Exception:
                pass
            self.failures.failure(method, context.peer(), (details or code.name)[:200])

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Any],
                          handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method

        def around(behavior: Callable[..., Any], streaming: bool) -> Callable[..., Any]:
            if getattr(behavior, "experimental_non_blocking", False) or not streaming:
                def wrapped(request: Any, context: grpc.ServicerContext, *callback: Any) -> Any:
                    try:
                        return behavior(request, context, *callback)
                    finally:
                        self._check(method, context)

                return wrapped

            def wrapped_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                try:
                    yield from behavior(request, context)
                finally:
                    self._check(method, context)

            return wrapped_stream

        return wrap_handler(handler, around)


# -- handler wrapping that keeps gRPC's semantics --------------------------------------------

_HANDLER_FLAGS = ("experimental_non_blocking", "experimental_thread_pool")
_SHAPES = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


def wrap_handler(handler: grpc.RpcMethodHandler,
                 around: Callable[[Callable[..., Any], bool], Callable[..., Any]]) -> grpc.RpcMethodHandler:
    """``handler`` with its behavior replaced by ``around(behavior, response_streaming)``.

    gRPC reads flags from the behavior function itself: ``experimental_non_blocking`` (the health
    service's ``Watch`` answers through a callback and holds no worker thread) and
    ``experimental_thread_pool``. A wrapper that drops them silently turns ``Watch`` into a
    blocking stream that pins a worker for as long as the client stays connected. The flags are
    copied onto the wrapper; a non-blocking wrapper must accept and pass on the third argument
    (``send_response_callback``).
    """
    for shape in _SHAPES:
        behavior = getattr(handler, shape, None)
        if behavior is None:
            continue
        wrapper = around(behavior, bool(handler.response_streaming))
        for flag in _HANDLER_FLAGS:
            if hasattr(behavior, flag):
                setattr(wrapper, flag, getattr(behavior, flag))
        return handler._replace(**{shape: wrapper})
    return handler


# -- concurrent streams per peer -------------------------------------------------------------

STREAM_LIMIT_DETAILS = "too many concurrent streams from {host} (at most {limit} per peer); close one and retry"
STREAMS_FULL_DETAILS = "too many concurrent streams on this server (at most {limit}); retry later"


def peer_host(peer: str) -> str:
    """The host part of a gRPC peer (``ipv4:127.0.0.1:5555`` -> ``ipv4:127.0.0.1``)."""
    head, sep, tail = peer.rpartition(":")
    return head if sep and tail.isdigit() and head not in ("", "ipv4", "ipv6") else peer


class StreamLimitInterceptor(grpc.ServerInterceptor):
    """Caps concurrent streaming RPCs (health ``Watch``, ``StreamSample``...) per peer host and in all.

    Every RPC counts toward ``GRPC_MAX_CONCURRENT_RPCS`` until it ends, even one that holds no
    worker thread; long-lived streams could otherwise take every slot and make ordinary calls
    fail with ``RESOURCE_EXHAUSTED``. Beyond ``per_peer`` streams from one host, or ``total``
    streams overall, a new stream is refused at once with ``RESOURCE_EXHAUSTED`` and a message
    that says which limit was hit. Unary calls are not counted here.
    """

    def __init__(self, per_peer: int, total: int) -> None:
        if per_peer < 1 or total < 1:
            raise ValueError(f"stream limits must be >= 1 (per_peer={per_peer}, total={total})")
        self.per_peer = per_peer
        self.total = total
        self._lock = threading.Lock()
        self._by_host: dict[str, int] = {}
        self._open = 0

    @classmethod
    def for_concurrency(cls, max_concurrent_rpcs: int) -> StreamLimitInterceptor:
        """Half the RPC slots per peer host, three quarters for all streams together: a quarter
        of the slots always stays free for unary calls."""
        return cls(per_peer=max(1, max_concurrent_rpcs // 2),
                   total=max(1, max_concurrent_rpcs - max(1, max_concurrent_rpcs // 4)))

    def open_streams(self, host: str | None = None) -> int:
        with self._lock:
            return self._open if host is None else self._by_host.get(host, 0)

    def _acquire(self, host: str) -> str | None:
        with self._lock:
            if self._open >= self.total:
                return STREAMS_FULL_DETAILS.format(limit=self.total)
            count = self._by_host.get(host, 0)
            if count >= self.per_peer:
                return STREAM_LIMIT_DETAILS.format(host=host, limit=self.per_peer)
            self._by_host[host] = count + 1
            self._open += 1
            return None

    def _release(self, host: str) -> None:
        with self._lock:
            count = self._by_host.get(host, 0) - 1
            if count > 0:
                self._by_host[host] = count
            else:
                self._by_host.pop(host, None)
            self._open = max(0, self._open - 1)

    def _admit(self, context: grpc.ServicerContext) -> None:
        host = peer_host(context.peer())
        refused = self._acquire(host)
        if refused is not None:
            log.info("stream refused: %s", refused)  # per-attempt: not a WARNING (a client could flood the log)
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refused)
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                self._release(host)

        # Runs when the RPC ends however it ends (done, cancelled, deadline, server stop).
        if not context.add_callback(release):
            release()

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Any],
                          handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or not (handler.request_streaming or handler.response_streaming):
            return handler

        def around(behavior: Callable[..., Any], _streaming: bool) -> Callable[..., Any]:
            def limited(request: Any, context: grpc.ServicerContext, *callback: Any) -> Any:
                self._admit(context)
                return behavior(request, context, *callback)

            return limited

        return wrap_handler(handler, around)
