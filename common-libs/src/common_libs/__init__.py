"""The fleet's shared library: only what must be identical in every service."""

__version__ = "3.5.4"

__all__ = ["__version__"]
