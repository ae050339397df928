"""The fleet's shared library: only what must be identical in every service."""

__version__ = "4.0.0"

__all__ = ["__version__"]
