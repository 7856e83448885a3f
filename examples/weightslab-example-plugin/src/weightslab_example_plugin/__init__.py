"""Example third-party WeightsLab plugin (see README.md)."""

__version__ = "0.1.0"
