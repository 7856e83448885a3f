"""Weights Studio web UI and its launcher (static server + Envoy)."""

__version__ = "0.1.0"
