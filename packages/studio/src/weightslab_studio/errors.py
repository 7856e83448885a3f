"""The one error type of the Studio launcher: its message says what is wrong and what to do."""

from __future__ import annotations


class StudioError(Exception):
    pass
