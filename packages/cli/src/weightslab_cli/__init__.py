"""The `weightslab` command and the CLI inspection server + client."""

__version__ = "0.1.0"
