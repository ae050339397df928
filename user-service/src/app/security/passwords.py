"""Argon2id password hashing, run in worker threads so that it never blocks the event loop."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """The cost parameters of new hashes (memory in KiB)."""

    time_cost: int
    memory_cost_kib: int
    parallelism: int

    def describe(self) -> str:
        """A one-line summary, e.g. for the benchmark and the logs."""
        return f"argon2id t={self.time_cost} m={self.memory_cost_kib} KiB p={self.parallelism}"


class PasswordHashing:
    """Hash and verify secrets with Argon2id; at most ``concurrency`` hashes run at once."""

    def __init__(self, parameters: Argon2Parameters, *, concurrency: int) -> None:
        self.parameters = parameters
        self._hasher = PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_cost_kib,
            parallelism=parameters.parallelism,
        )
        # Each hash holds memory_cost KiB; the limiter bounds memory and queues bursts of logins.
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._dummy_hash: str | None = None

    async def hash(self, secret: str) -> str:
        """Return the Argon2id hash of ``secret`` (a fresh random salt each time)."""
        return await anyio.to_thread.run_sync(self._hasher.hash, secret, limiter=self._limiter)

    async def verify(self, secret_hash: str, secret: str) -> bool:
        """Tell whether ``secret`` matches ``secret_hash``; a malformed hash never matches."""
        return await anyio.to_thread.run_sync(
            self._verify_sync, secret_hash, secret, limiter=self._limiter
        )

    async def warm_up(self) -> None:
        """Make the dummy hash that unknown accounts are checked against (once, at start-up)."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))

    async def verify_dummy(self, secret: str) -> None:
        """Spend the time of one verification, so an unknown account answers as slowly."""
        await self.warm_up()
        assert self._dummy_hash is not None
        await self.verify(self._dummy_hash, secret)

    def needs_rehash(self, secret_hash: str) -> bool:
        """Tell whether the hash was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(secret_hash)
        except InvalidHashError:
            return True

    def _verify_sync(self, secret_hash: str, secret: str) -> bool:
        try:
            return self._hasher.verify(secret_hash, secret)
        except (VerificationError, InvalidHashError, UnicodeEncodeError):
            return False
