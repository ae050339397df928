"""Test doubles at the HTTP boundary: the OpenAI-compatible test server and stub services."""
