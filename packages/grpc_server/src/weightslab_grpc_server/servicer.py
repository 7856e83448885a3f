"""``weightslab.v1.ExperimentService`` over the in-process core :class:`~weightslab.experiment.Experiment`.

Rules every handler follows:

* the request bytes are parsed here (a malformed message is ``INVALID_ARGUMENT``), then every
  field is validated; a bad one is ``INVALID_ARGUMENT`` with a message naming it;
* the main lock is taken only through ``try_acquire_rlock(experiment.lock, stuck_seconds)``
  (``GRPC_WATCHDOG_STUCK_SECONDS``, 60 without the watchdog) and only to snapshot: heavy work
  (queries, histograms, media) runs after it is released; a timeout is ``RESOURCE_EXHAUSTED``;
* ``ValueError``/``KeyError`` (``UnknownSamples``, ``QueryError``, ``HyperParameterError``...)
  are ``INVALID_ARGUMENT``; anything unexpected is ``INTERNAL`` with the traceback logged;
* mutating calls are appended to the experiment's audit log (outcome ok / error / denied).

Nothing a client sends is evaluated as code: queries go through the core query engine.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import grpc
import numpy as np
from google.protobuf.message import DecodeError
from weightslab.audit import AuditLog, get_audit_log
from weightslab.lock import LockTimeout, try_acquire_rlock
from weightslab.operations import Unavailable
from weightslab.plugins import call_accepting
from weightslab.query.frame import string_nulls

from weightslab_grpc_server import __version__
from weightslab_grpc_server._generated import experiment_pb2 as pb
from weightslab_grpc_server.convert import (
    as_dict,
    float_of,
    int_of,
    minmax_indices,
    parse_json,
    python_to_value,
    text_of,
    timestamp_text,
    to_json,
    uniform_downsample,
    uniform_indices,
    value_to_python,
)
from weightslab_grpc_server.errors import RpcError, exception_text, invalid, precondition
from weightslab_grpc_server.media import iter_chunks, media_of, media_source

log = logging.getLogger("weightslab.grpc")

SERVICE_NAME = "weightslab.v1.ExperimentService"
SERVICE_DESCRIPTOR = pb.DESCRIPTOR.services_by_name["ExperimentService"]

DEFAULT_STUCK_SECONDS = 60.0
MAX_NAME = 256
MAX_ID = 1024
MAX_TEXT = 100_000
MAX_IDS = 1_000_000
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100
MAX_COLUMNS = 1000
MAX_SORT_KEYS = 16
MAX_SIGNALS = 1000
MAX_CURVE_POINTS = 1_000_000
MAX_BINS = 4096
DEFAULT_BINS = 64
MAX_THUMBNAIL = 8192
DEFAULT_CHUNK = 64 * 1024
MAX_STEPS = 1_000_000_000
MAX_MESSAGE_DETAILS = 4000
MAX_EDIT_IDS_SHOWN = 1000
ORDER_CACHE_ENTRIES = 16

_STATES = {
    "running": pb.TRAINING_STATE_RUNNING,
    "paused": pb.TRAINING_STATE_PAUSED,
    "evaluating": pb.TRAINING_STATE_EVALUATING,
}
_EDIT_ACTIONS = {
    pb.EDIT_ACTION_TAG: "tag",
    pb.EDIT_ACTION_UNTAG: "untag",
    pb.EDIT_ACTION_SET_CATEGORY: "set_category",
    pb.EDIT_ACTION_CLEAR_CATEGORY: "clear_category",
    pb.EDIT_ACTION_DISCARD: "discard",
    pb.EDIT_ACTION_RESTORE: "restore",
}
_THUMBNAIL_ERRORS = {"invalid": "INVALID_ARGUMENT", "unavailable": "FAILED_PRECONDITION", "internal": "INTERNAL"}
_COLUMN_TYPES = {"numeric": pb.COLUMN_TYPE_NUMBER, "string": pb.COLUMN_TYPE_STRING, "bool": pb.COLUMN_TYPE_BOOL}


# -- validation helpers -------------------------------------------------------------


def _text(value: str, field: str, *, required: bool = False, max_len: int = MAX_NAME) -> str:
    if required and not value.strip():
        raise invalid(f"{field}: required")
    if len(value) > max_len:
        raise invalid(f"{field}: {len(value)} characters (at most {max_len})")
    if "\x00" in value:
        raise invalid(f"{field}: contains a NUL character")
    return value


def _names(values: Iterable[str], field: str, *, max_items: int, max_len: int = MAX_NAME) -> list[str]:
    items = list(values)
    if len(items) > max_items:
        raise invalid(f"{field}: {len(items)} entries (at most {max_items})")
    for i, value in enumerate(items):
        _text(value, f"{field}[{i}]", required=True, max_len=max_len)
    return items


def _state(value: Any) -> Any:
    return _STATES.get(text_of(value), pb.TRAINING_STATE_UNSPECIFIED)


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A plugin/controller method with the keyword arguments it accepts; ``None`` = not given."""
    return call_accepting(fn, *args, drop_none=True, **kwargs)


def _method(obj: Any, name: str, what: str) -> Callable[..., Any]:
    fn = getattr(obj, name, None)
    if not callable(fn):
        raise precondition(f"the installed {what} does not provide {name}()")
    return fn


def caller_of(context: grpc.ServicerContext) -> dict[str, Any]:
    """Who is calling (audit): peer, client certificate subject, token fingerprint."""
    try:
        try:
            from weightslab_auth.tokens import caller_identity
        except ImportError:
            identity = _fallback_identity(context)
        else:
            identity = dict(caller_identity(context))
    except Exception:  # identity is best effort; never fail the call over it
        log.debug("caller identity unavailable", exc_info=True)
        identity = {"peer": _peer(context)}
    return {"transport": "grpc", **identity}


def _peer(context: grpc.ServicerContext) -> str:
    try:
        return str(context.peer())
    except Exception:
        return ""


def _fallback_identity(context: grpc.ServicerContext) -> dict[str, Any]:
    from weightslab.config import fingerprint

    auth = context.auth_context() or {}
    subject = auth.get("x509_subject") or auth.get("x509_common_name") or []
    token = None
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str) and key.lower() in ("authorization", "x-api-key", "x-grpc-auth-token"):
            token = value.split(" ", 1)[-1].strip() if key.lower() == "authorization" else value.strip()
            break
    return {"peer": _peer(context),
            "client_subject": subject[0].decode("utf-8", "replace") if subject else None,
            "token_fingerprint": fingerprint(token) if token else None}


_PRECONDITION_ERRORS: tuple[type[BaseException], ...] | None = None


def _precondition_errors() -> tuple[type[BaseException], ...]:
    """The core's "not now" errors (a pass already running, training not paused...)."""
    global _PRECONDITION_ERRORS
    if _PRECONDITION_ERRORS is None:
        found: list[type[BaseException]] = []
        for module, names in (("weightslab.evaluation", ("EvaluationBusy", "EvaluationError")),
                              ("weightslab.checkpoints", ("TrainingNotPaused",))):
            try:
                imported = __import__(module, fromlist=list(names))
            except ImportError:
                continue
            found.extend(getattr(imported, name) for name in names if hasattr(imported, name))
        _PRECONDITION_ERRORS = tuple(found)
    return _PRECONDITION_ERRORS


def status_code(name: str) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, name, grpc.StatusCode.UNKNOWN)


# -- the servicer ---------------------------------------------------------------------


class ExperimentServicer:
    """Handlers of ``weightslab.v1.ExperimentService``; state lives in the experiment.

    One instance serves every (re)start of the server, so a restart keeps it (and the
    experiment) intact. Register it with :meth:`generic_handler`.
    """

    def __init__(self, experiment: Any, *, audit: AuditLog | None = None, pm: Any = None) -> None:
        self.experiment = experiment
        self.audit = audit if audit is not None else get_audit_log(experiment)
        self.pm = pm if pm is not None else getattr(experiment, "pm", None)
        self._frame_cache: tuple[Any, int, Any] | None = None
        self._agent: Any = None
        self._agent_lock = threading.Lock()
        self._order_cache: OrderedDict[str, tuple[Any, int, np.ndarray, bool]] = OrderedDict()
        self._order_lock = threading.Lock()
        self._status_cache: dict[str, Any] | None = None
        self._status_lock = threading.Lock()

    # -- plumbing --------------------------------------------------------------------
    def stuck_seconds(self) -> float:
        config = getattr(self.experiment, "config", None)
        try:
            if config is not None and "watchdog" in config:
                return float(config["watchdog"].stuck_seconds)
        except (KeyError, AttributeError, TypeError, ValueError):
            pass
        return DEFAULT_STUCK_SECONDS

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the main lock (bounded wait) for a short mutation."""
        with try_acquire_rlock(self.experiment.lock, self.stuck_seconds()):
            yield

    @contextmanager
    def data_locked(self) -> Iterator[None]:
        """Hold the table lock (``experiment.data_lock``; the main lock on cores without one) for
        a short read, waiting at most the stuck threshold. Never call history reads or
        ``recorder.drain()`` inside: they take the recorder's lock, then this one."""
        lock = getattr(self.experiment, "data_lock", None)
        if lock is None:
            with self.locked():
                yield
            return
        timeout = self.stuck_seconds()
        if not lock.acquire(timeout=timeout):
            raise LockTimeout(f"data_lock not acquired within {timeout:g}s")
        try:
            yield
        finally:
            lock.release()

    def drain(self) -> None:
        """Fold the training loop's queued records in (no lock of ours may be held)."""
        recorder = getattr(self.experiment, "recorder", None)
        drain = getattr(recorder, "drain", None)
        if callable(drain):
            drain()

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
    def _parse(name: str, request_cls: Any, raw: Any) -> Any:
        if not isinstance(raw, bytes):
            raise invalid(f"request: expected a serialized {request_cls.DESCRIPTOR.full_name}")
        try:
            return request_cls.FromString(raw)
        except (DecodeError, ValueError, RecursionError) as exc:
            raise invalid(f"request: not a valid {request_cls.DESCRIPTOR.full_name} message ({exc})") from None

    def _unary(self, name: str, request_cls: Any, impl: Callable[..., Any]) -> Callable[..., Any]:
        def handler(raw: bytes, context: grpc.ServicerContext) -> Any:
            try:
                request = self._parse(name, request_cls, raw)
                return impl(request, context)
            except Exception as exc:
                self._abort(name, exc, context)

        handler.__name__ = name
        return handler

    def _streaming(self, name: str, request_cls: Any, impl: Callable[..., Any]) -> Callable[..., Any]:
        def handler(raw: bytes, context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                request = self._parse(name, request_cls, raw)
                yield from impl(request, context)
            except Exception as exc:
                self._abort(name, exc, context)

        handler.__name__ = name
        return handler

    def _abort(self, name: str, exc: Exception, context: grpc.ServicerContext) -> None:
        code, message = self.classify(name, exc)
        if len(message) > MAX_MESSAGE_DETAILS:
            message = message[:MAX_MESSAGE_DETAILS] + "..."
        context.abort(status_code(code), message)

    @staticmethod
    def classify(name: str, exc: BaseException, *, log_internal: bool = True) -> tuple[str, str]:
        """``(status code name, message)`` of an exception raised by a handler."""
        if isinstance(exc, RpcError):
            return exc.code, exc.message
        if isinstance(exc, LockTimeout):
            return "RESOURCE_EXHAUSTED", f"experiment busy: {exc}; retry later"
        if isinstance(exc, Unavailable) or isinstance(exc, _precondition_errors()):
            return "FAILED_PRECONDITION", exception_text(exc)
        if isinstance(exc, (ValueError, KeyError)):
            return "INVALID_ARGUMENT", exception_text(exc)
        if isinstance(exc, ConnectionError):
            return "UNAVAILABLE", exception_text(exc)
        if isinstance(exc, NotImplementedError):
            return "UNIMPLEMENTED", exception_text(exc)
        if log_internal:
            log.error("%s failed unexpectedly", name, exc_info=(type(exc), exc, exc.__traceback__))
        return "INTERNAL", f"internal error in {name} ({type(exc).__name__}); see the server log"

    def _redacted(self, name: str, exc: Exception, secret: str) -> RpcError:
        """``exc`` as the :class:`RpcError` the client would get, with ``secret`` masked; an
        unexpected error is logged here, without the traceback that would carry the secret."""
        code, message = self.classify(name, exc, log_internal=False)

        def mask(text: str) -> str:
            return text.replace(secret, "<redacted>") if secret else text

        if code == "INTERNAL":
            log.error("%s failed unexpectedly: %s: %s", name, type(exc).__name__, mask(exception_text(exc)))
        return RpcError(code, mask(message))

    @contextmanager
    def audited(self, context: grpc.ServicerContext, action: str, params: Mapping[str, Any] | None = None
                ) -> Iterator[Any]:
        """Audit a mutating interaction (the error message is the one the client gets)."""
        with self.audit.interaction(action, params=params, caller=caller_of(context)) as entry:
            try:
                yield entry
            except Exception as exc:
                code, message = self.classify(action, exc, log_internal=False)
                entry.fail(message if code != "INTERNAL" else f"internal error ({type(exc).__name__})")
                raise

    # -- snapshots ---------------------------------------------------------------------
    def frame(self) -> Any:
        """Query frame of the whole table (with the mislabel columns), cached per table version.

        ``Experiment.frame()`` takes the copy under the table lock; paging through results of
        an unchanged table reuses it (and the engine's cached keys) instead of copying again.
        """
        self.drain()
        table = self.experiment.table
        version = table.version
        cached = self._frame_cache
        if cached is not None and cached[0] is table and cached[1] == version:
            return cached[2]
        build = getattr(self.experiment, "frame", None)
        if callable(build):
            frame = build()
        else:  # a minimal experiment: copy under the lock, derived columns after
            with self.data_locked():
                frame = table.frame()
        self._frame_cache = (table, version, frame)  # keyed by the version read *before* the copy
        return frame

    def _row_of(self, sample_id: str, split: str, prefix: str = "") -> tuple[int, str]:
        _text(sample_id, f"{prefix}sample_id", required=True, max_len=MAX_ID)
        _text(split, f"{prefix}split")
        self.drain()
        with self.data_locked():
            table = self.experiment.table
            rows = table.find([sample_id], split or None)
            splits = [str(table.split[r]) for r in rows.tolist()]
        if len(rows) > 1:
            raise invalid(f"{prefix}split: sample {sample_id!r} is in several splits ({', '.join(splits)}): "
                          "name one")
        return int(rows[0]), splits[0]

    # -- query parsing ---------------------------------------------------------------------
    @staticmethod
    def parse_query(message: Any, field: str) -> Any:
        from weightslab.query import Query, QueryError, as_query

        kind = message.WhichOneof("kind") if message is not None else None
        if kind is None:
            return Query()
        if kind == "text":
            text = _text(message.text, f"{field}.text", max_len=MAX_TEXT)
            if not text.strip():
                return Query()
            try:
                return as_query(text)
            except QueryError as exc:
                raise invalid(f"{field}.text: {exc}") from None
            except RecursionError:
                raise invalid(f"{field}.text: nested too deeply") from None
        data = parse_json(message.spec_json, f"{field}.spec_json")
        if not isinstance(data, dict):
            raise invalid(f"{field}.spec_json: expected a JSON object (the query spec)")
        try:
            return as_query(data)
        except QueryError as exc:
            raise invalid(f"{field}.spec_json: {exc}") from None
        except RecursionError:
            raise invalid(f"{field}.spec_json: nested too deeply") from None

    @staticmethod
    def _sort(keys: Iterable[Any], field: str) -> tuple[Any, ...]:
        from weightslab.query import SortKey

        items = list(keys)
        if len(items) > MAX_SORT_KEYS:
            raise invalid(f"{field}: {len(items)} keys (at most {MAX_SORT_KEYS})")
        out = []
        for i, key in enumerate(items):
            _text(key.column, f"{field}[{i}].column", required=True)
            out.append(SortKey(column=key.column, descending=key.descending))
        return tuple(out)

    @staticmethod
    def _with(query: Any, **changes: Any) -> Any:
        from weightslab.query import Query

        data = {"filter": query.filter, "sort": query.sort, "page": query.page, "top_k": query.top_k,
                "group": query.group}
        data.update(changes)
        return Query(**data)

    # ================================================================= status/control ==
    def status(self) -> dict[str, Any]:
        """``Experiment.status()`` computed incrementally: the same fields, but split counts are
        updated only for appended rows (rows never change split) and the discarded count only
        when the table changed, so a status poll stays O(1) on a 1M-row table."""
        exp = self.experiment
        table = exp.table
        self.drain()
        with self.data_locked():
            n, version = table.n, table.version
            cached = self._status_cache
            if cached is None or cached["table"] is not table or cached["n"] > n:
                cached = {"table": table, "n": 0, "counts": {}, "version": -1, "discarded": 0}
            start = cached["n"]
            new_splits = table.split[start:n].copy() if n > start else None
            if cached["version"] != version:
                cached["discarded"] = int(np.count_nonzero(table.discarded[:n]))
                cached["version"] = version
            discarded = cached["discarded"]
            step, branch = exp.step, exp.branch
        if new_splits is not None:  # counted outside the main lock
            names, added = np.unique(new_splits.astype(str), return_counts=True)
            with self._status_lock:
                if cached["n"] == start:  # not already done by a concurrent call
                    counts = dict(cached["counts"])
                    for name, count in zip(names.tolist(), added.tolist(), strict=True):
                        counts[name] = counts.get(name, 0) + int(count)
                    cached["counts"], cached["n"] = counts, n
        self._status_cache = cached
        history = exp.history
        since = max(0, history.last_seq - 50)
        latest = {}
        for signal in history.signals():
            points = history.curve(signal, since_seq=since)
            if points:
                latest[signal] = points[-1].value
        control = exp.control
        return {"name": exp.name, "state": control.state.value, "step": step, "branch": branch, "samples": n,
                "active": n - discarded, "discarded": discarded, "splits": cached["counts"],
                "signals": latest, "steps_per_second": exp.steps_per_second(), "steps_left": control.steps_left,
                "root_log_dir": str(exp.root_log_dir), "waiting": control.waiting}

    def GetStatus(self, request: pb.GetStatusRequest, context: grpc.ServicerContext) -> pb.GetStatusResponse:
        status = self.status()
        response = pb.GetStatusResponse(
            name=str(status["name"]), state=_state(status["state"]), step=int_of(status["step"]),
            branch=str(status["branch"]), samples=int_of(status["samples"]), active=int_of(status["active"]),
            discarded=int_of(status["discarded"]), steps_per_second=float_of(status["steps_per_second"]),
            root_log_dir=status["root_log_dir"], waiting=bool(status["waiting"]), server_version=__version__)
        for split, count in status["splits"].items():
            response.splits[str(split)] = int_of(count)
        for signal, value in status["signals"].items():
            if value is not None and np.isfinite(value):
                response.signals[str(signal)] = float(value)
        if status["steps_left"] is not None:
            response.steps_left = int_of(status["steps_left"])
        return response

    def _control_response(self, before: Any) -> pb.ControlResponse:
        control = self.experiment.control
        response = pb.ControlResponse(previous_state=_state(before), state=_state(control.state),
                                      step=int_of(self.experiment.step), branch=str(self.experiment.branch))
        if control.steps_left is not None:
            response.steps_left = int_of(control.steps_left)
        return response

    def Pause(self, request: pb.PauseRequest, context: grpc.ServicerContext) -> pb.ControlResponse:
        with self.audited(context, "pause") as entry:
            control = self.experiment.control
            before = control.state
            control.pause()
            response = self._control_response(before)
            entry.before, entry.after = text_of(before), text_of(control.state)
            entry.result = {"step": response.step}
        return response

    def Resume(self, request: pb.ResumeRequest, context: grpc.ServicerContext) -> pb.ControlResponse:
        steps = request.steps if request.HasField("steps") else None
        with self.audited(context, "resume", {"steps": steps}) as entry:
            if steps is not None and not 1 <= steps <= MAX_STEPS:
                raise invalid(f"steps={steps}: expected 1..{MAX_STEPS} (omit it to resume without a limit)")
            control = self.experiment.control
            before = control.state
            control.resume(steps)
            response = self._control_response(before)
            entry.before, entry.after = text_of(before), text_of(control.state)
            entry.result = {"step": response.step, "branch": response.branch}
        return response

    # ================================================================= hyperparameters ==
    def GetHyperParameters(self, request: pb.GetHyperParametersRequest,
                           context: grpc.ServicerContext) -> pb.GetHyperParametersResponse:
        values = self.experiment.hyperparameters()
        applied: Mapping[str, Any] = values.get("applied") or {}
        pending: Mapping[str, Any] = values.get("pending") or {}
        response = pb.GetHyperParametersResponse()
        for key in sorted(set(applied) | set(pending)):
            item = response.parameters.add(key=key)
            item.applied.CopyFrom(python_to_value(applied.get(key)))
            if key in pending:
                item.requested.CopyFrom(python_to_value(pending[key]))
        hp = getattr(self.experiment, "hp", None)
        response.last_error = str(getattr(hp, "last_error", None) or "")
        return response

    def SetHyperParameter(self, request: pb.SetHyperParameterRequest,
                          context: grpc.ServicerContext) -> pb.SetHyperParameterResponse:
        params: dict[str, Any] = {"key": request.key}
        with self.audited(context, "set_hyperparameter", params) as entry:
            key = _text(request.key, "key", required=True, max_len=1024)
            if not request.HasField("value"):
                raise invalid("value: required: set one of number, int, bool, string, json")
            value = value_to_python(request.value, "value")
            entry.params["value"] = value
            previous = (self.experiment.hyperparameters().get("applied") or {}).get(key)
            try:
                requested = self.experiment.set_hyperparameter(key, value)
            except ValueError as exc:
                text = exception_text(exc)
                field = "key" if "unknown hyperparameter" in text or "key=" in text else "value"
                raise invalid(f"{field}: {text}") from None
            entry.before, entry.after = previous, requested
        return pb.SetHyperParameterResponse(key=key, previous=python_to_value(previous),
                                            requested=python_to_value(requested))

    # ================================================================= curves ==
    def GetCurves(self, request: pb.GetCurvesRequest, context: grpc.ServicerContext) -> pb.GetCurvesResponse:
        signals = _names(request.signals, "signals", max_items=MAX_SIGNALS)
        if request.since_seq < 0:
            raise invalid(f"since_seq={request.since_seq}: expected >= 0 (0 = from the beginning)")
        split = _text(request.split, "split")
        branch = _text(request.branch, "branch", max_len=MAX_ID)
        max_points = request.max_points
        if max_points and not 4 <= max_points <= MAX_CURVE_POINTS:
            raise invalid(f"max_points={max_points}: expected 0 (no cap) or 4..{MAX_CURVE_POINTS}")
        lo = request.min_step if request.HasField("min_step") else None
        hi = request.max_step if request.HasField("max_step") else None
        if lo is not None and hi is not None and hi < lo:
            raise invalid(f"max_step={hi}: expected >= min_step={lo}")
        history = self.experiment.history
        self.drain()  # fold queued records in first: fresher points
        next_seq = int(history.last_seq)  # every point with seq <= next_seq is already stored
        response = pb.GetCurvesResponse(next_seq=next_seq, branches=list(history.branches))
        for signal in dict.fromkeys(signals or history.signals()):
            points = history.curve(signal, since_seq=request.since_seq, split=split or None,
                                   branch=branch or None)
            groups: dict[tuple[str, str], list[Any]] = {}
            for p in points:
                if p.seq > next_seq or (lo is not None and p.step < lo) or (hi is not None and p.step > hi):
                    continue
                groups.setdefault((p.split, p.branch), []).append(p)
            for (p_split, p_branch), items in groups.items():
                series = response.series.add(signal=signal, split=p_split, branch=p_branch,
                                             total_points=len(items))
                if max_points and len(items) > max_points:
                    values = np.fromiter((p.value for p in items), dtype=np.float64, count=len(items))
                    keep = minmax_indices(values, max_points).tolist()
                    items = [items[i] for i in keep]
                    series.downsampled = True
                series.points.extend(pb.CurvePoint(step=p.step, value=p.value, seq=p.seq) for p in items)
        for marker in list(getattr(history, "markers", []) or []):
            data = as_dict(marker)
            step = int_of(data.get("step"))
            if (lo is not None and step < lo) or (hi is not None and step > hi):
                continue
            response.markers.add(step=step, kind=text_of(data.get("kind") or data.get("type")),
                                 text=text_of(data.get("text") or data.get("note") or data.get("label")),
                                 branch=text_of(data.get("branch")), details_json=to_json(data))
        return response

    def _max_points_per_sample(self) -> int:
        config = getattr(self.experiment, "config", None)
        section = config.get("data_cache") if config is not None and hasattr(config, "get") else None
        value = getattr(section, "max_points_per_sample", None)
        return 200 if value is None else int(value)

    def BreakBySlices(self, request: pb.BreakBySlicesRequest,
                      context: grpc.ServicerContext) -> pb.BreakBySlicesResponse:
        signal = _text(request.signal, "signal", required=True)
        tags = _names(request.tags, "tags", max_items=64)
        if not tags:
            raise invalid("tags: give at least one tag (name, or name=value for a categorical tag)")
        split = _text(request.split, "split")
        branches = _names(request.branches, "branches", max_items=1000, max_len=MAX_ID)
        frame = self.frame()
        mask = np.ones(len(frame), dtype=bool)
        for tag in tags:
            name, sep, value = tag.partition("=")
            if sep:
                col = frame.categories.get(name)
                mask &= (col == value) if col is not None else False
            else:
                col = frame.tags.get(name)
                mask &= col if col is not None else False
        if split:
            mask &= frame.split == split
        rows = np.flatnonzero(mask)
        h_rows, h_steps, h_values, h_codes = self.experiment.history.arrays(signal)
        if len(h_rows) == 0 and signal not in self.experiment.history.signals():
            known = ", ".join(getattr(self.experiment.table, "signal_names", [])) or "none"
            raise invalid(f"signal={signal!r}: no per-sample history for it; known: {known}")
        cap = self._max_points_per_sample()
        response = pb.BreakBySlicesResponse(matched_samples=len(rows), max_points=cap)
        sel = np.isin(h_rows, rows) & np.isfinite(h_values)
        names = list(self.experiment.history.branches)
        wanted = set(branches)
        for code in np.unique(h_codes[sel]).tolist():
            branch = names[code] if code < len(names) else ""
            if wanted and branch not in wanted:
                continue
            bsel = sel & (h_codes == code)
            steps, inverse = np.unique(h_steps[bsel], return_inverse=True)
            sums = np.bincount(inverse, weights=h_values[bsel], minlength=len(steps))
            counts = np.bincount(inverse, minlength=len(steps))
            means = sums / np.maximum(counts, 1)
            out_steps, out_values = uniform_downsample(steps, means, cap)
            series = response.series.add(signal=signal, split=split, branch=branch, total_points=len(steps),
                                         downsampled=len(out_steps) < len(steps))
            series.points.extend(pb.CurvePoint(step=int(s), value=float(v))
                                 for s, v in zip(out_steps.tolist(), out_values.tolist(), strict=True))
        return response

    # ================================================================= samples ==
    def _columns(self, frame: Any, requested: list[str]) -> list[str]:
        known = set(frame.column_names())
        if not requested:
            data = sorted(frame.columns)
            first = [c for c in ("label", "prediction") if c in frame.columns]
            return first + [c for c in data if c not in first]
        seen: set[str] = set()
        for i, name in enumerate(requested):
            if name in seen:  # repeats would multiply the response (cells = rows x columns)
                raise invalid(f"columns[{i}]: {name!r} is listed twice")
            seen.add(name)
            if name not in known:
                from weightslab.query import UnknownColumnError

                raise invalid(str(UnknownColumnError(name, frame.column_names(), field=f"columns[{i}]")))
        return requested

    def _ordered(self, frame: Any, query: Any, end: int) -> tuple[int, np.ndarray]:
        """``(total, first >= end rows in query order)``, cached per frame and filter/sort/top_k.

        Paging through one query (the Studio slider, the grid) then costs only the row
        building: the filter and the (partial) sort run once per table version.
        """
        from weightslab.query import select, sort_indices, top_k

        key = json.dumps([query.filter.model_dump(mode="json") if query.filter is not None else None,
                          [k.model_dump(mode="json") for k in query.sort],
                          query.top_k.model_dump(mode="json") if query.top_k is not None else None],
                         sort_keys=True)
        with self._order_lock:
            hit = self._order_cache.get(key)
            if hit is not None and hit[0] is frame and (hit[3] or len(hit[2]) >= end):
                self._order_cache.move_to_end(key)
                return hit[1], hit[2]
        if query.top_k is not None:
            t = query.top_k
            idx = top_k(frame, t.column, t.k, largest=t.largest, filter=query.filter)
        else:
            idx = select(frame, query.filter)
        total = len(idx)
        if query.sort:
            # A prefix a few pages long, so the next pages are served from the cache too.
            want = min(total, max(end * 2, end + 4 * MAX_LIMIT // 10))
            order = sort_indices(frame, idx, query.sort, limit=want) if want < total else \
                sort_indices(frame, idx, query.sort)
        else:
            order = idx
        complete = len(order) >= total
        with self._order_lock:
            for stale in [k for k, v in self._order_cache.items() if v[0] is not frame]:
                del self._order_cache[stale]  # never keep old snapshots alive
            self._order_cache[key] = (frame, total, order, complete)
            while len(self._order_cache) > ORDER_CACHE_ENTRIES:
                self._order_cache.popitem(last=False)
        return total, order

    def QuerySamples(self, request: pb.QuerySamplesRequest,
                     context: grpc.ServicerContext) -> pb.QuerySamplesResponse:
        from weightslab.query import Page

        query = self.parse_query(request.query if request.HasField("query") else None, "query")
        if query.group is not None:
            raise invalid("query: grouped queries (group by / aggregate) are not supported by QuerySamples")
        requested = _names(request.columns, "columns", max_items=MAX_COLUMNS)
        changes: dict[str, Any] = {}
        if request.sort:
            changes["sort"] = self._sort(request.sort, "sort")
        if request.HasField("page"):
            limit, offset = request.page.limit, request.page.offset
            if not 1 <= limit <= MAX_LIMIT:
                raise invalid(f"page.limit={limit}: expected 1..{MAX_LIMIT}")
            if offset > 10**12:
                raise invalid(f"page.offset={offset}: expected 0..{10**12}")
            changes["page"] = Page(offset=offset, limit=limit)
        if changes:
            query = self._with(query, **changes)
        frame = self.frame()
        columns = self._columns(frame, requested)
        offset, limit = int(query.page.offset), int(query.page.limit)
        total, order = self._ordered(frame, query, offset + limit)
        idx = np.ascontiguousarray(order[offset : offset + limit], dtype=np.int64)
        response = pb.QuerySamplesResponse(total=int(total), offset=offset)
        kinds = [frame.kind(name) for name in columns]
        for name, kind in zip(columns, kinds, strict=True):
            response.columns.add(name=name, type=_COLUMN_TYPES.get(kind, pb.COLUMN_TYPE_UNSPECIFIED))
        if len(idx) == 0:
            return response
        ids = frame.sample_id[idx].tolist()
        splits = frame.split[idx].tolist()
        discarded = frame.discarded[idx].tolist()
        add_row = response.rows.add
        rows = [add_row(sample_id=str(i), split=str(s), discarded=bool(d))
                for i, s, d in zip(ids, splits, discarded, strict=True)]
        cells = [row.values.add for row in rows]
        for name, kind in zip(columns, kinds, strict=True):
            values = frame.column(name)[idx].tolist()
            if kind == "numeric":
                for add, v in zip(cells, values, strict=True):
                    if v == v:
                        add(number=v)
                    else:
                        add()
            elif kind == "bool":
                for add, v in zip(cells, values, strict=True):
                    add(bool=bool(v))
            else:
                for add, v in zip(cells, values, strict=True):
                    add().CopyFrom(python_to_value(v))
        for tag, col in sorted(frame.tags.items()):
            for j in np.flatnonzero(col[idx]).tolist():
                rows[j].tags.append(tag)
        for cat, col in sorted(frame.categories.items()):
            sub = col[idx]
            for j in np.flatnonzero(~string_nulls(sub)).tolist():
                rows[j].categories[cat] = str(sub[j])
        return response

    def GetHistogram(self, request: pb.GetHistogramRequest,
                     context: grpc.ServicerContext) -> pb.GetHistogramResponse:
        from weightslab.query import histogram_by_position, histogram_by_value, ordered_indices

        mode = request.mode or pb.HISTOGRAM_MODE_BY_VALUE
        if mode not in (pb.HISTOGRAM_MODE_BY_VALUE, pb.HISTOGRAM_MODE_BY_POSITION):
            raise invalid(f"mode={request.mode}: expected HISTOGRAM_MODE_BY_VALUE or HISTOGRAM_MODE_BY_POSITION")
        bins = request.bins or DEFAULT_BINS
        if bins > MAX_BINS:
            raise invalid(f"bins={bins}: expected 1..{MAX_BINS} (0 = {DEFAULT_BINS})")
        query = self.parse_query(request.query if request.HasField("query") else None, "query")
        if query.group is not None:
            raise invalid("query: grouped queries are not supported by GetHistogram")
        if request.sort:
            query = self._with(query, sort=self._sort(request.sort, "sort"))
        column = _text(request.column, "column")
        response = pb.GetHistogramResponse(mode=mode, column=column)
        frame = self.frame()
        if mode == pb.HISTOGRAM_MODE_BY_POSITION:
            hist = histogram_by_position(frame, ordered_indices(frame, query), bins)
        else:
            if not column:
                raise invalid("column: required for a histogram by value")
            if query.top_k is not None:
                raise invalid("query: top_k is not supported by a histogram by value")
            kind = frame.kind(column, field="column")
            has_min, has_max = request.HasField("min"), request.HasField("max")
            if has_min != has_max:
                raise invalid("min/max: give both or neither")
            value_range = None
            if has_min:
                if not (np.isfinite(request.min) and np.isfinite(request.max)):
                    raise invalid("min/max: expected finite numbers")
                if request.max <= request.min:
                    raise invalid(f"max={request.max:g}: expected > min={request.min:g}")
                with np.errstate(all="ignore"):
                    edges = np.linspace(request.min, request.max, bins + 1)
                if not (np.isfinite(edges).all() and (np.diff(edges) > 0).all()):
                    raise invalid(f"min/max: [{request.min:g}, {request.max:g}] cannot be cut into {bins} bins "
                                  "(the range overflows or is too narrow)")
                value_range = (request.min, request.max)
            if kind == "string":
                return self._category_histogram(frame, column, bins, query, response)
            hist = histogram_by_value(frame, column, bins, filter=query.filter, range=value_range)
            response.missing = int(hist.missing)
        response.edges.extend(float(e) for e in hist.edges.tolist())
        for split in sorted(hist.by_split):
            total = np.asarray(hist.by_split[split])
            gone = np.asarray(hist.by_split_discarded.get(split, np.zeros_like(total)))
            response.series.add(split=split, discarded=False, counts=(total - gone).tolist())
            response.series.add(split=split, discarded=True, counts=gone.tolist())
        response.total = int(np.asarray(hist.counts).sum()) + int(hist.missing) + int(hist.out_of_range)
        return response

    @staticmethod
    def _category_histogram(frame: Any, column: str, bins: int, query: Any,
                            response: pb.GetHistogramResponse) -> pb.GetHistogramResponse:
        """By value for a text column: one bin per value (most frequent first, rest in "(other)")."""
        from weightslab.query import factorize, select

        rows = select(frame, query.filter)
        uniques, codes = factorize(frame.column(column)[rows])
        present = codes >= 0
        response.missing = int((~present).sum())
        rows, codes = rows[present], codes[present]
        counts = np.bincount(codes, minlength=len(uniques)) if len(uniques) else np.zeros(0, np.int64)
        order = np.argsort(-counts, kind="stable")
        shown = order[: bins if len(order) <= bins else bins - 1]
        slot = np.full(len(uniques), len(shown), dtype=np.int64)
        slot[shown] = np.arange(len(shown))
        names = [str(uniques[i]) for i in shown.tolist()]
        if len(order) > len(shown):
            names.append("(other)")
        nbins = max(len(names), 1)
        bin_of_row = slot[codes] if len(codes) else np.zeros(0, np.int64)
        split_names, split_codes = frame.split_codes()
        sc = split_codes[rows]
        disc = frame.discarded[rows]
        response.categories.extend(names)
        for s, split in enumerate(split_names):
            for flag in (False, True):
                sel = (sc == s) & (disc == flag)
                response.series.add(split=str(split), discarded=flag,
                                    counts=np.bincount(bin_of_row[sel], minlength=nbins)[:nbins].tolist())
        response.total = len(rows) + response.missing
        return response

    def ListSplits(self, request: pb.ListSplitsRequest, context: grpc.ServicerContext) -> pb.ListSplitsResponse:
        frame = self.frame()
        names, codes = frame.split_codes()
        response = pb.ListSplitsResponse()
        if not len(names):
            return response
        valid = codes >= 0
        totals = np.bincount(codes[valid], minlength=len(names))
        gone = np.bincount(codes[valid & frame.discarded], minlength=len(names))
        for i, name in enumerate(names):
            response.splits.add(name=str(name), samples=int(totals[i]), active=int(totals[i] - gone[i]),
                                discarded=int(gone[i]))
        return response

    def GetTrajectory(self, request: pb.GetTrajectoryRequest,
                      context: grpc.ServicerContext) -> pb.GetTrajectoryResponse:
        signals = _names(request.signals, "signals", max_items=MAX_SIGNALS)
        max_points = request.max_points
        if max_points and max_points > MAX_CURVE_POINTS:
            raise invalid(f"max_points={max_points}: expected 0 (no cap) or 1..{MAX_CURVE_POINTS}")
        row, split = self._row_of(request.sample_id, request.split)
        with self.data_locked():
            known = list(getattr(self.experiment.table, "signal_names", []))
        for i, signal in enumerate(signals):
            if signal not in known:
                raise invalid(f"signals[{i}]={signal!r}: no per-sample history; known: {', '.join(known) or 'none'}")
        response = pb.GetTrajectoryResponse(sample_id=request.sample_id, split=split)
        for signal in signals or known:
            steps, values, branches = self.experiment.history.trajectory(signal, row)
            keep = uniform_indices(len(steps), max_points)
            response.trajectories.add(signal=signal, steps=steps[keep].tolist(), values=values[keep].tolist(),
                                      branches=[branches[i] for i in keep.tolist()])
        return response

    def _sample_item(self, sample_id: str, split: str) -> tuple[str, Any]:
        """``(split, dataset item)`` of a sample of a watched loader (loaded outside any lock)."""
        row, split = self._row_of(sample_id, split)
        exp = self.experiment
        loader = (getattr(exp, "loaders", None) or {}).get(split)
        if loader is None:
            raise precondition(f"split {split!r} has no watched data loader in this process: no media to show")
        try:
            load = getattr(exp, "load_sample", None)
            if callable(load):
                return split, load(split, sample_id)
            return split, loader.item(loader.index_of(sample_id))
        except (ValueError, KeyError, IndexError) as exc:
            raise precondition(f"sample {sample_id!r} of split {split!r} cannot be loaded: "
                               f"{exception_text(exc)}") from None

    def _default_thumbnail_size(self) -> int:
        config = getattr(self.experiment, "config", None)
        section = config.get("data_cache") if config is not None and hasattr(config, "get") else None
        return int(getattr(section, "default_thumbnail_size", 720) or 720)

    def GetThumbnail(self, request: pb.GetThumbnailRequest,
                     context: grpc.ServicerContext) -> pb.GetThumbnailResponse:
        if request.size > MAX_THUMBNAIL:
            raise invalid(f"size={request.size}: expected 0 (default) or 1..{MAX_THUMBNAIL}")
        size = request.size or self._default_thumbnail_size()
        exp = self.experiment
        preview = getattr(exp, "preview", None)
        if callable(preview):  # the data cache's preview service when serving, else the hook
            _, split = self._row_of(request.sample_id, request.split)
            if split not in (getattr(exp, "loaders", None) or {}):
                raise precondition(f"split {split!r} has no watched data loader in this process: no media to show")
            try:
                result = preview(split, request.sample_id, size)
            except ValueError as exc:
                raise precondition(f"no preview for sample {request.sample_id!r}: {exception_text(exc)}") from None
        else:
            _, item = self._sample_item(request.sample_id, request.split)
            result = (self.pm.hook.weightslab_preview(sample=item, size=size, config=getattr(exp, "config", None))
                      if self.pm is not None else None)
            if result is None:
                raise precondition(f"no preview available for sample {request.sample_id!r}: no installed plugin "
                                   "implements weightslab_preview (pip install 'weightslab[data-cache]')")
        if not (isinstance(result, (tuple, list)) and len(result) == 2 and isinstance(result[0], (bytes, bytearray))
                and isinstance(result[1], str)):
            raise TypeError(f"the preview is {type(result).__name__}; expected (bytes, mime_type)")
        return pb.GetThumbnailResponse(data=bytes(result[0]), mime_type=result[1])

    def GetThumbnails(self, request: pb.GetThumbnailsRequest,
                      context: grpc.ServicerContext) -> pb.GetThumbnailsResponse:
        from weightslab.operations import media

        result = media.thumbnails(self.experiment, media.ThumbnailsRequest(
            sample_ids=tuple(request.sample_ids), split=request.split, size=request.size))
        response = pb.GetThumbnailsResponse(size=result.size)
        for item in result.thumbnails:
            response.thumbnails.add(sample_id=item.sample_id, split=item.split, data=item.data,
                                    mime_type=item.mime_type, error=item.error,
                                    error_code=_THUMBNAIL_ERRORS.get(item.error_kind, ""))
        return response

    def ListTags(self, request: pb.ListTagsRequest, context: grpc.ServicerContext) -> pb.ListTagsResponse:
        from weightslab.operations import tags

        response = pb.ListTagsResponse()
        for tag in tags.list_tags(self.experiment).tags:
            info = response.tags.add(name=tag.name, count=tag.count, discarded=tag.discarded,
                                     kind=pb.TAG_KIND_BOOLEAN if tag.kind == "boolean" else pb.TAG_KIND_CATEGORICAL)
            info.split_counts.update(tag.split_counts)
            for value in tag.values:
                info.values.add(value=value.value, count=value.count).split_counts.update(value.split_counts)
        return response

    def StreamSample(self, request: pb.StreamSampleRequest, context: grpc.ServicerContext) -> Iterator[pb.SampleChunk]:
        chunk = request.chunk_bytes or DEFAULT_CHUNK
        if not 1024 <= chunk <= 4 * 1024 * 1024:
            raise invalid(f"chunk_bytes={request.chunk_bytes}: expected 0 (64 KiB) or 1024..4194304")
        _, item = self._sample_item(request.sample_id, request.split)
        mime, source = media_source(media_of(item))
        for offset, data, total in iter_chunks(source, chunk):
            if not context.is_active():
                return
            if offset == 0:
                yield pb.SampleChunk(data=data, mime_type=mime, total_bytes=total, offset=0)
            else:
                yield pb.SampleChunk(data=data, offset=offset)

    def EditSamples(self, request: pb.EditSamplesRequest, context: grpc.ServicerContext) -> pb.EditSamplesResponse:
        target = request.WhichOneof("target")
        params: dict[str, Any] = {"action": _EDIT_ACTIONS.get(request.action, request.action),
                                  "split": request.split or None, "tag": request.tag or None,
                                  "value": request.value or None}
        if target == "ids":
            params["ids_count"] = len(request.ids.ids)
            params["ids"] = list(request.ids.ids[:100])
        elif target == "query":
            kind = request.query.WhichOneof("kind")
            params["query"] = getattr(request.query, kind) if kind else ""
        with self.audited(context, "edit_samples", params) as entry:
            action = _EDIT_ACTIONS.get(request.action)
            if action is None:
                raise invalid(f"action={request.action}: expected one of " + ", ".join(
                    pb.EditAction.Name(k) for k in _EDIT_ACTIONS))
            split = _text(request.split, "split")
            tag = _text(request.tag, "tag", required=action in ("tag", "untag", "set_category", "clear_category"))
            value = _text(request.value, "value", required=action == "set_category", max_len=MAX_ID)
            if target is None:
                raise invalid("target: give ids or query")
            kwargs: dict[str, Any] = {"split": split or None, "tag": tag or None, "value": value or None,
                                      "lock_timeout": self.stuck_seconds()}
            if target == "ids":
                ids = _names(request.ids.ids, "ids.ids", max_items=MAX_IDS, max_len=MAX_ID)
                if not ids:
                    raise invalid("ids.ids: expected at least one sample id")
                result = self._edit(action, ids=ids, **kwargs)
            else:
                query = self.parse_query(request.query, "query")
                if query.group is not None:
                    raise invalid("query: grouped queries cannot select samples to edit")
                if query.filter is None and query.top_k is None:
                    raise invalid("query: empty: it would edit every sample; give a filter (e.g. split == \"train\")")
                result = self._edit_by_query(action, query, **kwargs)
            entry.result = {"matched": result["matched"], "changed": result["changed"]}
        return pb.EditSamplesResponse(matched=int(result["matched"]), changed=int(result["changed"]),
                                      sample_ids=[str(s) for s in result.get("sample_ids", [])[:MAX_EDIT_IDS_SHOWN]])

    def _edit(self, action: str, **kwargs: Any) -> dict[str, Any]:
        try:  # the core takes the main lock with lock_timeout (-> LockTimeout), then the table lock
            result: dict[str, Any] = self.experiment.edit(action, **kwargs)
        except ValueError as exc:
            text = exception_text(exc)
            if "tag" in text and ("name" in text or "needs" in text):
                raise invalid(f"tag: {text}") from None
            raise
        return result

    def _edit_by_query(self, action: str, query: Any, **kwargs: Any) -> dict[str, Any]:
        """Resolve the query on a snapshot (no lock held), then apply one atomic edit to those
        table rows (rows are append-only, so snapshot row numbers stay valid)."""
        from weightslab.query import ordered_indices

        frame = self.frame()
        rows = ordered_indices(frame, self._with(query, sort=()))
        split = kwargs.pop("split", None)
        if split:
            rows = rows[frame.split[rows] == split]
        return self._edit(action, rows=rows, **kwargs)

    # ================================================================= evaluation ==
    def _evaluation(self) -> Any:
        evaluation = getattr(self.experiment, "evaluation", None)
        if evaluation is None:
            raise precondition("evaluation not available")
        return evaluation

    @staticmethod
    def _evaluation_status(result: Any) -> pb.EvaluationStatus:
        data = as_dict(result)
        status = pb.EvaluationStatus(state=text_of(data.get("state") or data.get("status") or ""),
                                     progress=float_of(data.get("progress")), split=text_of(data.get("split")),
                                     message=text_of(data.get("message") or data.get("error")),
                                     details_json=to_json(data), id=text_of(data.get("id")),
                                     eval_fn=text_of(data.get("eval_fn")))
        for name, value in (data.get("metrics") or {}).items():
            number = float_of(value, float("nan"))
            if np.isfinite(number):
                status.metrics[str(name)] = number
        return status

    def _evaluation_state(self, evaluation: Any) -> str:
        try:
            return text_of(as_dict(_method(evaluation, "status", "evaluation controller")()).get("state"))
        except Exception:
            return ""

    def StartEvaluation(self, request: pb.StartEvaluationRequest,
                        context: grpc.ServicerContext) -> pb.EvaluationStatus:
        params = {"split": request.split or None, "eval_fn": request.eval_fn or None,
                  "tags": list(request.tags) or None,
                  "max_steps": request.max_steps if request.HasField("max_steps") else None,
                  "resume_after": request.resume_after if request.HasField("resume_after") else None,
                  "include_discarded": request.include_discarded or None,
                  "batch_size": request.batch_size or None, "model": request.model or None}
        with self.audited(context, "start_evaluation", params) as entry:
            _text(request.split, "split")
            _text(request.eval_fn, "eval_fn")
            _text(request.model, "model")
            _names(request.tags, "tags", max_items=64)
            if request.HasField("max_steps") and request.max_steps < 1:
                raise invalid(f"max_steps={request.max_steps}: expected >= 1 (omit it for every batch)")
            if request.batch_size > 1_000_000:
                raise invalid(f"batch_size={request.batch_size}: expected 0 (the loader's) or 1..1000000")
            evaluation = self._evaluation()
            entry.before = self._evaluation_state(evaluation)
            result = _call(_method(evaluation, "start", "evaluation controller"), split=request.split or None,
                           tags=list(request.tags) or None, max_steps=params["max_steps"],
                           resume_after=params["resume_after"], eval_fn=request.eval_fn or None,
                           include_discarded=request.include_discarded or None,
                           batch_size=request.batch_size or None, model=request.model or None)
            status = self._evaluation_status(result)
            entry.after = status.state
        return status

    def GetEvaluationStatus(self, request: pb.GetEvaluationStatusRequest,
                            context: grpc.ServicerContext) -> pb.EvaluationStatus:
        return self._evaluation_status(_method(self._evaluation(), "status", "evaluation controller")())

    def CancelEvaluation(self, request: pb.CancelEvaluationRequest,
                         context: grpc.ServicerContext) -> pb.EvaluationStatus:
        with self.audited(context, "cancel_evaluation") as entry:
            evaluation = self._evaluation()
            entry.before = self._evaluation_state(evaluation)
            status = self._evaluation_status(_method(evaluation, "cancel", "evaluation controller")())
            entry.after = status.state
        return status

    # ================================================================= checkpoints ==
    def _checkpoints(self) -> Any:
        checkpoints = getattr(self.experiment, "checkpoints", None)
        if checkpoints is None:
            raise precondition("checkpoints not available")
        return checkpoints

    @staticmethod
    def _checkpoint(item: Any) -> pb.Checkpoint:
        data = as_dict(item)
        return pb.Checkpoint(
            id=text_of(data.get("id") or data.get("checkpoint_id") or data.get("name")), step=int_of(data.get("step")),
            branch=text_of(data.get("branch")),
            created_at=timestamp_text(data.get("created_at") or data.get("created") or data.get("time")),
            note=text_of(data.get("note")), details_json=to_json(data),
            parent_branch=text_of(data.get("parent_branch")), reason=text_of(data.get("reason")))

    def ListCheckpoints(self, request: pb.ListCheckpointsRequest,
                        context: grpc.ServicerContext) -> pb.ListCheckpointsResponse:
        branch = _text(request.branch, "branch", max_len=MAX_ID)
        items = _call(_method(self._checkpoints(), "list", "checkpoint manager"), branch=branch or None)
        response = pb.ListCheckpointsResponse()
        for item in list(items or []):
            checkpoint = self._checkpoint(item)
            if not branch or not checkpoint.branch or checkpoint.branch == branch:
                response.checkpoints.append(checkpoint)
        return response

    def SaveCheckpoint(self, request: pb.SaveCheckpointRequest, context: grpc.ServicerContext) -> pb.Checkpoint:
        with self.audited(context, "save_checkpoint", {"note": request.note or None}) as entry:
            note = _text(request.note, "note", max_len=10_000)
            checkpoint = self._checkpoint(_call(_method(self._checkpoints(), "save", "checkpoint manager"),
                                                note=note or None, lock_timeout=self.stuck_seconds()))
            entry.after = {"id": checkpoint.id, "step": checkpoint.step, "branch": checkpoint.branch}
        return checkpoint

    def RestoreCheckpoint(self, request: pb.RestoreCheckpointRequest,
                          context: grpc.ServicerContext) -> pb.Checkpoint:
        target = request.WhichOneof("target")
        params = {"checkpoint_id": request.checkpoint_id or None,
                  "step": request.step if target == "step" else None, "branch": request.branch or None,
                  "force": request.force or None,
                  "restore_hyperparameters": request.restore_hyperparameters
                  if request.HasField("restore_hyperparameters") else None}
        with self.audited(context, "restore_checkpoint", params) as entry:
            if target is None:
                raise invalid("target: give checkpoint_id or step")
            if target == "checkpoint_id":
                _text(request.checkpoint_id, "checkpoint_id", required=True, max_len=MAX_ID)
            elif request.step < 0:
                raise invalid(f"step={request.step}: expected >= 0")
            branch = _text(request.branch, "branch", max_len=MAX_ID)
            manager = self._checkpoints()
            entry.before = {"step": int_of(self.experiment.step), "branch": str(self.experiment.branch)}
            result = _call(_method(manager, "restore", "checkpoint manager"),
                           checkpoint_id=request.checkpoint_id if target == "checkpoint_id" else None,
                           step=request.step if target == "step" else None, branch=branch or None,
                           force=request.force or None, restore_hyperparameters=params["restore_hyperparameters"],
                           lock_timeout=self.stuck_seconds())
            checkpoint = self._checkpoint(result)
            entry.after = {"id": checkpoint.id, "step": checkpoint.step, "branch": checkpoint.branch}
        return checkpoint

    # ================================================================= agent ==
    def agent(self) -> Any:
        with self._agent_lock:
            if self._agent is None and self.pm is not None:
                self._agent = self.pm.hook.weightslab_query_agent(config=self.experiment.config)
            agent = self._agent
        if agent is None:
            raise precondition("agent plugin not installed (pip install 'weightslab[agent]')")
        return agent

    @staticmethod
    def _agent_status(result: Any) -> pb.AgentStatus:
        data = as_dict(result)
        available = data.get("available", data.get("ok", data.get("healthy", True)))
        return pb.AgentStatus(available=bool(available), initialized=bool(data.get("initialized", False)),
                              provider=text_of(data.get("provider")), model=text_of(data.get("model")),
                              message=text_of(data.get("message") or data.get("error")),
                              details_json=to_json(data))

    def AgentHealth(self, request: pb.AgentHealthRequest, context: grpc.ServicerContext) -> pb.AgentStatus:
        return self._agent_status(_method(self.agent(), "health", "agent")())

    def AgentQuery(self, request: pb.AgentQueryRequest, context: grpc.ServicerContext) -> pb.AgentQueryResponse:
        params = {"question": request.question, "preview": request.preview}
        with self.audited(context, "agent_query", params) as entry:
            question = _text(request.question, "question", required=True, max_len=10_000)
            result = _call(_method(self.agent(), "query", "agent"), question, preview=request.preview,
                           experiment=self.experiment)
            data = as_dict(result)
            plan = data.get("plan")
            ids = [str(s) for s in list(data.get("sample_ids") or data.get("ids") or [])[:MAX_EDIT_IDS_SHOWN]]
            response = pb.AgentQueryResponse(
                plan_json=plan if isinstance(plan, str) else to_json(plan), plan_text=text_of(
                    data.get("plan_text") or data.get("readable") or data.get("explanation")),
                answer=text_of(data.get("answer") or data.get("message")),
                applied=bool(data.get("applied", False)) and not request.preview,
                matched=int_of(data.get("matched", len(ids))), sample_ids=ids, details_json=to_json(data))
            entry.result = {"applied": response.applied, "matched": response.matched, "plan": plan}
        return response

    def AgentInit(self, request: pb.AgentInitRequest, context: grpc.ServicerContext) -> pb.AgentStatus:
        params = {"provider": request.provider or None, "model": request.model or None,
                  "api_key": request.api_key or None}  # written as a fingerprint only
        with self.audited(context, "agent_init", params) as entry:
            provider = _text(request.provider, "provider", max_len=64)
            api_key = _text(request.api_key, "api_key", max_len=4096)
            model = _text(request.model, "model", max_len=MAX_ID)
            init = _method(self.agent(), "init", "agent")
            try:
                result = _call(init, provider=provider or None, api_key=api_key or None, model=model or None)
            except Exception as exc:  # provider SDKs may echo the key: never let it reach client/log/audit
                raise self._redacted("AgentInit", exc, api_key) from None
            status = self._agent_status(result)
            entry.after = {"provider": status.provider, "model": status.model, "initialized": status.initialized}
        return status

    def AgentModels(self, request: pb.AgentModelsRequest, context: grpc.ServicerContext) -> pb.AgentModelsResponse:
        result = _method(self.agent(), "models", "agent")()
        response = pb.AgentModelsResponse()
        items: Any = result
        if isinstance(result, Mapping):
            response.current = text_of(result.get("current"))
            items = result.get("models") or []
        for item in list(items or []):
            if isinstance(item, str):
                response.models.add(id=item, name=item)
            else:
                data = as_dict(item)
                ident = text_of(data.get("id") or data.get("name"))
                response.models.add(id=ident, name=text_of(data.get("name") or ident),
                                    description=text_of(data.get("description")))
        return response

    def AgentChangeModel(self, request: pb.AgentChangeModelRequest,
                         context: grpc.ServicerContext) -> pb.AgentStatus:
        with self.audited(context, "agent_change_model", {"model": request.model}) as entry:
            model = _text(request.model, "model", required=True, max_len=MAX_ID)
            agent = self.agent()
            status = self._agent_status(_call(_method(agent, "change_model", "agent"), model))
            entry.after = {"model": status.model}
        return status

    def AgentReset(self, request: pb.AgentResetRequest, context: grpc.ServicerContext) -> pb.AgentStatus:
        with self.audited(context, "agent_reset") as entry:
            status = self._agent_status(_method(self.agent(), "reset", "agent")())
            entry.after = {"initialized": status.initialized}
        return status

    def AgentHistory(self, request: pb.AgentHistoryRequest,
                     context: grpc.ServicerContext) -> pb.AgentHistoryResponse:
        limit = request.limit or 100
        if limit > 10_000:
            raise invalid(f"limit={limit}: expected 0 (100) or 1..10000")
        entries = _call(_method(self.agent(), "history", "agent"), limit=limit)
        response = pb.AgentHistoryResponse()
        for item in list(entries or [])[-limit:]:
            data = as_dict(item)
            response.entries.add(timestamp=timestamp_text(data.get("timestamp") or data.get("ts")),
                                 kind=text_of(data.get("kind") or data.get("type")),
                                 text=text_of(data.get("text") or data.get("message")), details_json=to_json(data))
        return response
