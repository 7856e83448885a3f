"""Rich consoles of the ``weightslab`` command: tables are never cut outside a terminal.

Rich assumes 80 columns when the output is a pipe or a file, so ``weightslab config show | grep``
and ``weightslab cli query ... > rows.txt`` lost columns and rows' ends; outside a terminal the
width is unbounded (tables are as wide as their content) and errors go to stderr.
"""

from __future__ import annotations

import sys
from typing import Any

PIPE_WIDTH = 100_000  # "unbounded": a table is only as wide as its content


def make_console(*, stderr: bool = False, **kwargs: Any) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if "width" not in kwargs and not _isatty(stream):
        kwargs["width"] = PIPE_WIDTH
    return Console(stderr=stderr, **kwargs)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
