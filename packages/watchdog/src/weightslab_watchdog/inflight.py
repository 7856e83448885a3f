"""In-flight RPC tracking: a ``grpc.ServerInterceptor`` that records every running call.

An entry ``(method, start monotonic time, peer)`` is added when the handler starts running
on a server worker thread and removed when

* a unary-response handler returns or raises;
* a streaming-response iterator is exhausted, raises, is closed, is dropped by gRPC (the
  client cancelled or the deadline passed) or the RPC terminates while no thread is
  producing a response.

A unary handler whose client already gave up (deadline, cancellation) stays tracked until
the handler itself returns: it still occupies a worker thread, which is what the watchdog
must see. The cost per call is one dict insert and one dict pop under a lock.

Only time spent *working* can be stuck. A streaming call is *busy* while the server produces
its next response (inside ``next()``) and *waiting* while gRPC sends that response to a slow
or idle reader, or while the handler waits for the client's next request message: waiting on
a client is never stuck (:meth:`InflightCall.busy_for`). Handlers marked
``experimental_non_blocking`` (the health service's ``Watch``) keep that flag and receive the
``send_response_callback``: they hold no worker thread once they return, so they are tracked
only while they run.

When the lock monitor interrupts a handler thread (:class:`_WatchdogInterrupt`), the
interceptor turns the interrupt into ``ABORTED`` for the client; without that, gRPC (which
only catches ``Exception``) would never send a status and the client would hang.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import grpc

from weightslab_watchdog.interrupt import _WatchdogInterrupt

INTERRUPTED_DETAILS = "interrupted by the WeightsLab watchdog: the main lock was held for too long"


@dataclass(frozen=True)
class InflightCall:
    token: int
    method: str
    started: float  # time.monotonic() when the handler started
    peer: str
    kind: str  # unary_unary | unary_stream | stream_unary | stream_stream
    thread_name: str
    busy_since: float | None = None  # start of the current piece of server work; None = waiting on the client

    def age(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.started

    def busy_for(self, now: float | None = None) -> float:
        """Seconds of server work without a break; 0 while the call waits on its client."""
        if self.busy_since is None:
            return 0.0
        return (time.monotonic() if now is None else now) - self.busy_since

    def describe(self, now: float | None = None) -> str:
        state = (f"busy {self.busy_for(now):.1f}s" if self.busy_since is not None
                 else "waiting on the client")
        return (f"{self.method} ({self.kind}) from {self.peer or '?'} running {self.age(now):.1f}s "
                f"({state}) on thread {self.thread_name!r}")


def _abort_interrupted(context: grpc.ServicerContext) -> NoReturn:
    context.abort(grpc.StatusCode.ABORTED, INTERRUPTED_DETAILS)
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises


class _TrackedResponses:
    """Wraps a response iterator; ends the tracking entry exactly once."""

    __slots__ = ("__weakref__", "_busy", "_context", "_done", "_it", "_token", "_tracker")

    def __init__(self, responses: Any, tracker: InflightTracker, token: int,
                 context: grpc.ServicerContext) -> None:
        self._it: Iterator[Any] = iter(responses)
        self._tracker = tracker
        self._token = token
        self._context = context
        self._busy = False
        self._done = False

    def __iter__(self) -> _TrackedResponses:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        self._busy = True
        self._tracker.busy(self._token)
        try:
            item = next(self._it)
            self._tracker.waiting(self._token)  # gRPC now sends it: the reader's pace, not ours
            return item
        except StopIteration:
            self._finish()
            raise
        except _WatchdogInterrupt:
            self._finish()
            _abort_interrupted(self._context)
        except BaseException:
            self._finish()
            raise
        finally:
            self._busy = False

    def close(self) -> None:
        self._finish()
        close = getattr(self._it, "close", None)
        if close is not None:
            close()

    def _on_terminated(self) -> None:
        # The RPC is over. A thread still inside next() keeps the entry until it returns.
        if not self._busy:
            self._finish()

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._tracker.end(self._token)

    def __del__(self) -> None:
        self._finish()


def _terminated_callback(ref: weakref.ref[_TrackedResponses]) -> Callable[[], None]:
    def callback() -> None:
        responses = ref()
        if responses is not None:
            responses._on_terminated()

    return callback


class InflightTracker(grpc.ServerInterceptor):
    """Thread-safe table of in-flight RPCs, filled by intercepting the server's handlers."""

    def __init__(self) -> None:
        self._calls: dict[int, InflightCall] = {}
        self._lock = threading.Lock()
        self._tokens = itertools.count(1)

    # -- table -------------------------------------------------------------------------
    def begin(self, method: str, peer: str = "", kind: str = "unary_unary") -> int:
        """Record a call that starts now (busy); returns the token for :meth:`end`."""
        token = next(self._tokens)
        now = time.monotonic()
        call = InflightCall(token, method, now, peer, kind, threading.current_thread().name, now)
        with self._lock:
            self._calls[token] = call
        return token

    def busy(self, token: int) -> None:
        """The call's server work (re)starts now, on the current thread."""
        with self._lock:
            call = self._calls.get(token)
            if call is not None:
                self._calls[token] = replace(call, busy_since=time.monotonic(),
                                             thread_name=threading.current_thread().name)

    def waiting(self, token: int) -> None:
        """The call waits on its client (a slow reader, the next request message): never stuck."""
        with self._lock:
            call = self._calls.get(token)
            if call is not None and call.busy_since is not None:
                self._calls[token] = replace(call, busy_since=None)

    def end(self, token: int) -> None:
        """Forget a call (idempotent; unknown tokens, e.g. after :meth:`reset`, are ignored)."""
        with self._lock:
            self._calls.pop(token, None)

    def snapshot(self) -> list[InflightCall]:
        """Every in-flight call, oldest first."""
        with self._lock:
            calls = list(self._calls.values())
        calls.sort(key=lambda call: call.started)
        return calls

    def oldest(self) -> InflightCall | None:
        with self._lock:
            return min(self._calls.values(), key=lambda call: call.started, default=None)

    def reset(self, started_before: float | None = None) -> int:
        """Drop every entry (or those started before ``started_before``); returns how many.

        Used after a server restart: the calls of the old server are gone for the clients;
        their handler threads, if they ever return, end tokens that no longer exist.
        """
        with self._lock:
            if started_before is None:
                dropped = len(self._calls)
                self._calls.clear()
                return dropped
            stale = [token for token, call in self._calls.items() if call.started < started_before]
            for token in stale:
                del self._calls[token]
            return len(stale)

    def __len__(self) -> int:
        return len(self._calls)

    def stop(self) -> None:
        """No-op, so that code stopping every entry of ``experiment.services`` may include this."""

    # -- interceptor -------------------------------------------------------------------
    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Any],
                          handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if isinstance(method, bytes):  # pragma: no cover - older grpc versions
            method = method.decode("utf-8", "replace")
        if handler.request_streaming and handler.response_streaming:
            kind, attr = "stream_stream", "stream_stream"
        elif handler.request_streaming:
            kind, attr = "stream_unary", "stream_unary"
        elif handler.response_streaming:
            kind, attr = "unary_stream", "unary_stream"
        else:
            kind, attr = "unary_unary", "unary_unary"
        behavior = getattr(handler, attr)
        if behavior is None:  # pragma: no cover - a handler always has the behavior of its shape
            return handler
        if getattr(behavior, "experimental_non_blocking", False):
            wrapped = self._track_non_blocking(behavior, method, kind)
        elif handler.response_streaming:
            wrapped = self._track_stream_response(behavior, method, kind)
        else:
            wrapped = self._track_unary_response(behavior, method, kind)
        return handler._replace(**{attr: _same_semantics(wrapped, behavior)})

    def _requests(self, request: Any, kind: str, token: int) -> Any:
        return _WaitingRequests(request, self, token) if kind.startswith("stream_") else request

    def _track_unary_response(self, behavior: Callable[..., Any],
                              method: str, kind: str) -> Callable[..., Any]:
        def tracked(request: Any, context: grpc.ServicerContext) -> Any:
            token = self.begin(method, context.peer(), kind)
            try:
                return behavior(self._requests(request, kind, token), context)
            except _WatchdogInterrupt:
                _abort_interrupted(context)
            finally:
                self.end(token)

        return tracked

    def _track_non_blocking(self, behavior: Callable[..., Any], method: str,
                            kind: str) -> Callable[..., Any]:
        """A non-blocking handler returns at once and answers later through the callback."""
        def tracked(request: Any, context: grpc.ServicerContext, *callback: Any) -> Any:
            token = self.begin(method, context.peer(), kind)
            try:
                return behavior(request, context, *callback)
            except _WatchdogInterrupt:
                _abort_interrupted(context)
            finally:
                self.end(token)

        return tracked

    def _track_stream_response(self, behavior: Callable[..., Any],
                               method: str, kind: str) -> Callable[..., Any]:
        def tracked(request: Any, context: grpc.ServicerContext) -> Any:
            token = self.begin(method, context.peer(), kind)
            try:
                responses = _TrackedResponses(behavior(self._requests(request, kind, token), context),
                                              self, token, context)
            except _WatchdogInterrupt:
                self.end(token)
                _abort_interrupted(context)
            except BaseException:
                self.end(token)
                raise
            self.waiting(token)  # until gRPC asks for the first response
            context.add_callback(_terminated_callback(weakref.ref(responses)))
            return responses

        return tracked


class _WaitingRequests:
    """A request iterator: the call waits on its client while the handler reads the next message."""

    __slots__ = ("_it", "_token", "_tracker")

    def __init__(self, requests: Any, tracker: InflightTracker, token: int) -> None:
        self._it: Iterator[Any] = iter(requests)
        self._tracker = tracker
        self._token = token

    def __iter__(self) -> _WaitingRequests:
        return self

    def __next__(self) -> Any:
        self._tracker.waiting(self._token)
        try:
            return next(self._it)
        finally:
            self._tracker.busy(self._token)


_HANDLER_FLAGS = ("experimental_non_blocking", "experimental_thread_pool")


def _same_semantics(wrapper: Callable[..., Any], behavior: Callable[..., Any]) -> Callable[..., Any]:
    """Copy the flags gRPC reads from a behavior (non-blocking, own thread pool) onto its wrapper."""
    for flag in _HANDLER_FLAGS:
        if hasattr(behavior, flag):
            setattr(wrapper, flag, getattr(behavior, flag))
    return wrapper
