"""Print the Argon2id hash of a secret read from stdin (for ``USERS_SERVICE_CLIENTS``).

    python -m app.security.hash_secret < secret.txt
    printf '%s' "$CLIENT_SECRET" | python -m app.security.hash_secret

The secret is never echoed; one trailing newline is ignored. The cost parameters are the
service's (``USERS_ARGON2_*``).
"""

from __future__ import annotations

import getpass
import sys

from argon2 import PasswordHasher

from app.config import Settings


def hash_secret(secret: str, settings: Settings) -> str:
    """The Argon2id hash of ``secret`` with the configured cost parameters."""
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost_kib,
        parallelism=settings.argon2_parallelism,
    )
    return hasher.hash(secret)


def main() -> int:
    """Read the secret (prompting without echo on a terminal) and print its hash."""
    if sys.stdin.isatty():
        secret = getpass.getpass("secret: ")
    else:
        secret = sys.stdin.read()
        secret = secret.removesuffix("\n").removesuffix("\r")
    if not secret:
        print("hash_secret: the secret is empty", file=sys.stderr)
        return 2
    print(hash_secret(secret, Settings()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
