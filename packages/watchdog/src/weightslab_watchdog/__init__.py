"""Lock monitor and interrupt, in-flight RPC tracking, restart / exit-on-stuck policy."""

__version__ = "0.1.0"
