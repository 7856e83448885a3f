"""``GRPC_VERBOSITY``: gRPC's C core reads it when ``grpc`` is first imported.

This module never imports grpc. :func:`apply_grpc_verbosity` is called by the serve hook,
before the server module (and so grpc) is imported: it sets ``os.environ["GRPC_VERBOSITY"]``
only while grpc is not loaded yet in this process; otherwise it logs a WARNING that the
setting only takes effect when set (environment or ``.env``) before grpc is first imported.
``wl.serve`` runs every plugin's ``weightslab_configure`` (which may import grpc, e.g. auth's
token module) before ``weightslab_serve``, so the plugin's ``tryfirst`` configure hook applies
a value that came from ``.env``/kwarg/config already there (silently; the serve hook warns).
Importing weightslab never touches the environment.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

log = logging.getLogger("weightslab.grpc")


def _source(config: Any) -> str:
    try:
        return str(config.source("GRPC_VERBOSITY"))
    except (KeyError, AttributeError, TypeError):
        return "default"


def apply_grpc_verbosity(config: Any, *, warn: bool = True, only_from_files: bool = False) -> bool:
    """Export the configured verbosity for the C core. Returns True when it takes effect.

    ``only_from_files``: act only on a value from the ``.env`` file, a kwarg or the config (the
    ones the process environment lacks) — what the early ``weightslab_configure`` call does.
    """
    try:
        level = config["grpc"].verbosity
    except (KeyError, AttributeError, TypeError):
        return False
    if not level:
        return False
    if only_from_files and _source(config) not in (".env", "kwarg", "config"):
        return False
    current = os.environ.get("GRPC_VERBOSITY")
    if current is not None and current.strip().upper() == level:
        return True  # already in the environment the C core read (or will read)
    if "grpc" in sys.modules:
        if warn:
            log.warning("GRPC_VERBOSITY=%s not applied: grpc was already imported in this process and its "
                        "C core reads the variable only once, at import. Export GRPC_VERBOSITY in the shell "
                        "(or the .env file) before the process imports grpc.", level)
        return False
    os.environ["GRPC_VERBOSITY"] = level
    return True
