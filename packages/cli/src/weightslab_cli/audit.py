"""Audit trail of the CLI server's mutating commands.

Records go to the experiment's one audit log (:func:`weightslab.audit.get_audit_log`, shared
with the gRPC server), in the same shape whatever the transport. Tokens never appear in a
record, only their fingerprint.
"""

from __future__ import annotations

import logging
from typing import Any

from weightslab.audit import get_audit_log, make_record

log = logging.getLogger("weightslab.cli.audit")


def audit_event(experiment: Any, action: str, **fields: Any) -> None:
    """Record one interaction; an audit failure is logged, never raised to the caller."""
    try:
        get_audit_log(experiment).record(make_record(action, **fields))
    except Exception:
        log.exception("writing the audit record for %s failed", action)
