"""Micro-benchmarks behind the service's design choices (``make bench``)."""
