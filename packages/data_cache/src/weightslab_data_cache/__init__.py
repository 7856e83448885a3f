"""Crash-safe HDF5 persistence, preview/thumbnail cache, curve downsampling."""

__version__ = "0.1.0"
