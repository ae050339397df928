"""Persistence: tables, repositories (every query lives here) and the engine."""
