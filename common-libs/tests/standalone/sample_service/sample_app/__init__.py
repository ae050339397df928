"""A tiny service: notes in its database, and the settings the runner gave it."""
