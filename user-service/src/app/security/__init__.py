"""Secrets handling: Argon2id password hashing, signing keys, access and refresh tokens."""
