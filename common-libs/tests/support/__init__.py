"""Helpers shared by the test suite: real signing keys, tokens, and a small upstream app."""
