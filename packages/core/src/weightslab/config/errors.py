from __future__ import annotations


class ConfigError(ValueError):
    """Invalid configuration; the message names every bad variable and what it accepts."""
