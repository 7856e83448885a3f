"""Core operations: the use cases every front end (SDK, CLI server, gRPC, agent) performs.

Each operation takes the experiment and a typed, frozen request and returns a typed, frozen
result; it validates the request (:class:`InvalidRequest` names the field), takes the main lock
only with the one configurable timeout (``WL_LOCK_TIMEOUT_SECONDS``; ``LockTimeout``), raises
:class:`Unavailable` for a missing capability, and writes the audit record of a mutation with
the caller's transport. Front ends only translate their wire format to requests and back.
"""

from __future__ import annotations

from weightslab.operations._base import SDK, Caller, InvalidRequest, Unavailable, lock_timeout

__all__ = ["SDK", "Caller", "InvalidRequest", "Unavailable", "lock_timeout"]
