"""glancelite: a drop-in, Glance-compatible image service."""

__version__ = "0.1.0"
