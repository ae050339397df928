"""Helpers without HTTP or SQL: token counting."""
