"""gRPC server: ExperimentService, server lifecycle, audit log, health and reflection."""

__version__ = "0.1.0"
