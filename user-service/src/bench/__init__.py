"""Benchmarks of user-service (scripts, not tests)."""
