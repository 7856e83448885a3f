"""TLS/mTLS credentials, token authentication, dev PKI (`weightslab certs init`)."""

__version__ = "0.1.0"
