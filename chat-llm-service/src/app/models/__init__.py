"""Pydantic API models (requests and responses); inputs forbid unknown fields."""
