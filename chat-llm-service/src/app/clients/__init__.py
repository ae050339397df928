"""Typed HTTP clients for the other services this one calls."""
