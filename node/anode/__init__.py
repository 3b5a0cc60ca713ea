"""Anode: a strongly consistent, S3-compatible object store for small clusters."""

__version__ = "0.1.0"
