"""Benchmarks of the service (run with ``make bench``; not part of the test suite)."""
