"""Rate limits a service enforces itself, counted in its own PostgreSQL (``common-libs[db]``).

The gateway limits requests per client address; a limit per user or per account must hold
whatever the address, across every gateway and every replica of the service, so its count lives
in the service's database: one row per (policy, key) in ``rate_limit_counters``, counted by one
atomic statement (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``), so that N + k concurrent
hits on a quota of N admit exactly N, on any number of replicas.

A policy is a fixed window that starts with a key's first hit: ``quota`` hits per
``window_seconds``; the hits past the quota are refused until the window ends (they do not
extend it), and then the next hit starts a new window. Keys are stored as their SHA-256, never as
given (an email, a user id). The database's clock decides, so replicas whose clocks disagree
still agree on the windows.

A service declares the table and creates it in a migration of its own::

    add_rate_limit_table(Base.metadata)          # app/db/tables.py

    def upgrade() -> None:                        # migrations/versions/000N_rate_limits.py
        create_rate_limit_table(op)

then, in its lifespan, builds one :class:`RateLimiter` per policy and purges expired rows::

    limiter = RateLimiter(engine, RateLimitPolicy("orders", quota=10, window_seconds=60))
    start_rate_limit_purge(stack, engine)

and calls ``await limiter.acquire(key)`` where the limit applies: it raises
:class:`RateLimitExceeded` (``429`` problem+json with ``Retry-After`` and the ``RateLimit-Policy``
and ``RateLimit`` fields of draft-ietf-httpapi-ratelimit-headers) or returns the
:class:`RateLimitDecision`, whose :meth:`~RateLimitDecision.headers` an admitted response may
carry too. :func:`rate_limit_responses` adds both to a route's documented responses.

The table is version 1 of this schema: a later change comes as new functions, never as a change to
these, so that an old migration keeps creating what it created.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import math
import re
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from common_libs.errors import TooManyRequests
from common_libs.problem_openapi import problem_responses
from common_libs.problem_types import RATE_LIMITED
from common_libs.service_app import run_in_background

__all__ = [
    "DEFAULT_DETAIL",
    "RATE_LIMIT_TABLE",
    "RateLimitDecision",
    "RateLimitExceeded",
    "RateLimitPolicy",
    "RateLimiter",
    "add_rate_limit_table",
    "create_rate_limit_table",
    "drop_rate_limit_table",
    "purge_expired_counters",
    "rate_limit_responses",
    "start_rate_limit_purge",
]

# The statements below name the table in their text (no SQL is built from strings).
RATE_LIMIT_TABLE = "rate_limit_counters"

_logger = logging.getLogger("common_libs.ratelimit")

# A policy name is sent as a Structured Field String: kept to characters that need no escaping.
_POLICY_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
# Within the ``hits`` column (an integer, one past the quota at most) and a year's window.
_MAX_QUOTA = 1_000_000_000
_MAX_WINDOW_SECONDS = 366 * 86_400


class _Operations(Protocol):
    def get_bind(self) -> Any: ...


def add_rate_limit_table(metadata: MetaData) -> Table:
    """``rate_limit_counters``: one row per (policy, key) with its window's end and hit count."""
    return Table(
        RATE_LIMIT_TABLE,
        metadata,
        Column("policy", String(64), nullable=False),
        # SHA-256 of the key: the table never holds the email or id it limits.
        Column("key_hash", LargeBinary(32), nullable=False),
        Column("window_ends_at", DateTime(timezone=True), nullable=False),
        Column("hits", Integer, nullable=False),
        PrimaryKeyConstraint("policy", "key_hash", name="pk_rate_limit_counters"),
        # The purge's "windows that ended".
        Index("ix_rate_limit_counters_window_ends_at", "window_ends_at"),
    )


def create_rate_limit_table(op: _Operations) -> None:
    """In a migration's ``upgrade()``: create ``rate_limit_counters``."""
    add_rate_limit_table(MetaData()).create(op.get_bind())


def drop_rate_limit_table(op: _Operations) -> None:
    """In a migration's ``downgrade()``: drop it."""
    add_rate_limit_table(MetaData()).drop(op.get_bind())


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """``quota`` hits per ``window_seconds`` for each key, under a name clients see."""

    name: str
    quota: int
    window_seconds: int

    def __post_init__(self) -> None:
        if not _POLICY_NAME.fullmatch(self.name):
            raise ValueError("a policy name is 1..64 characters of [a-z0-9_.-], a letter first")
        if not 1 <= self.quota <= _MAX_QUOTA:
            raise ValueError(f"a policy's quota is 1..{_MAX_QUOTA}")
        if not 1 <= self.window_seconds <= _MAX_WINDOW_SECONDS:
            raise ValueError(f"a policy's window is 1..{_MAX_WINDOW_SECONDS} seconds")

    @property
    def field_value(self) -> str:
        """The ``RateLimit-Policy`` field value: ``"name";q=quota;w=window``."""
        return f'"{self.name}";q={self.quota};w={self.window_seconds}'


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """What one hit found: the hits in the key's window (this one included) and its end."""

    policy: RateLimitPolicy
    hits: int
    reset_seconds: int

    @property
    def is_allowed(self) -> bool:
        """Whether this hit was within the quota."""
        return self.hits <= self.policy.quota

    @property
    def remaining(self) -> int:
        """How many more hits the window admits."""
        return max(0, self.policy.quota - self.hits)

    def headers(self) -> dict[str, str]:
        """The ``RateLimit-Policy`` and ``RateLimit`` response fields for this decision."""
        return {
            "RateLimit-Policy": self.policy.field_value,
            "RateLimit": f'"{self.policy.name}";r={self.remaining};t={self.reset_seconds}',
        }


DEFAULT_DETAIL = (
    "Too many requests: at most {quota} per {window_seconds} s; try again in {reset_seconds} s."
)


class RateLimitExceeded(TooManyRequests):
    """A key used up its quota: ``429`` with ``Retry-After`` (the seconds until its window ends)
    and the ``RateLimit-Policy`` and ``RateLimit`` fields.

    ``detail`` is a template: ``{quota}``, ``{window_seconds}`` and ``{reset_seconds}`` are
    filled in.
    """

    def __init__(self, decision: RateLimitDecision, detail: str = DEFAULT_DETAIL) -> None:
        self.decision = decision
        super().__init__(
            detail.format(
                quota=decision.policy.quota,
                window_seconds=decision.policy.window_seconds,
                reset_seconds=decision.reset_seconds,
            ),
            retry_after=decision.reset_seconds,
            headers=decision.headers(),
        )


# One statement, atomic under any concurrency: the row lock of ON CONFLICT serialises the hits on
# one key. A window that has ended starts again with this hit; within a window the count goes up
# (capped one past the quota: a refused hit changes nothing but the row's lock).
_HIT = text(
    """
    INSERT INTO rate_limit_counters AS c (policy, key_hash, window_ends_at, hits)
    VALUES (:policy, :key_hash, now() + make_interval(secs => :window), 1)
    ON CONFLICT (policy, key_hash) DO UPDATE SET
        hits = CASE WHEN c.window_ends_at <= now() THEN 1
                    ELSE least(c.hits + 1, :cap) END,
        window_ends_at = CASE WHEN c.window_ends_at <= now() THEN excluded.window_ends_at
                              ELSE c.window_ends_at END
    RETURNING hits, extract(epoch FROM window_ends_at - now()) AS seconds_left
    """
)
_RESET = text("DELETE FROM rate_limit_counters WHERE policy = :policy AND key_hash = :key_hash")
_PURGE = text(
    """
    DELETE FROM rate_limit_counters WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM rate_limit_counters WHERE window_ends_at <= now() LIMIT :batch_size
    ))
    """
)


def _key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class RateLimiter:
    """One policy, counted in ``rate_limit_counters`` of ``engine``'s database.

    Each call takes a connection of ``engine``'s pool for one statement that commits at once,
    whatever becomes of the request. A request that calls it while it holds a connection of its
    own must not share that pool: when every connection is held by a request waiting for a
    second one, they all wait until the pool's timeout. Give such a service's limiters a small
    engine of their own (their connections are never held while waiting for anything else).
    """

    def __init__(self, engine: AsyncEngine, policy: RateLimitPolicy) -> None:
        # Each statement commits on its own: a hit counts even when the request then fails.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.policy = policy

    async def hit(self, key: str) -> RateLimitDecision:
        """Count one hit of ``key`` and say whether it is within the quota."""
        async with self._engine.connect() as connection:
            result = await connection.execute(
                _HIT,
                {
                    "policy": self.policy.name,
                    "key_hash": _key_hash(key),
                    "window": self.policy.window_seconds,
                    "cap": self.policy.quota + 1,
                },
            )
            hits, seconds_left = result.one()
        # now() is when the hit's transaction started: one that started just before another
        # hit opened the window, and waited on its row, sees a little more than the window left.
        reset_seconds = min(self.policy.window_seconds, max(1, math.ceil(seconds_left)))
        return RateLimitDecision(policy=self.policy, hits=hits, reset_seconds=reset_seconds)

    async def acquire(self, key: str, *, detail: str = DEFAULT_DETAIL) -> RateLimitDecision:
        """Count one hit of ``key``; raise :class:`RateLimitExceeded` (its ``detail`` from the
        template) past the quota."""
        decision = await self.hit(key)
        if not decision.is_allowed:
            raise RateLimitExceeded(decision, detail)
        return decision

    async def reset(self, key: str) -> None:
        """Forget ``key``'s hits (a successful login forgives the failed ones before it)."""
        async with self._engine.connect() as connection:
            await connection.execute(
                _RESET, {"policy": self.policy.name, "key_hash": _key_hash(key)}
            )


async def purge_expired_counters(engine: AsyncEngine, *, batch_size: int = 1000) -> int:
    """Delete up to ``batch_size`` rows whose window has ended; return how many went."""
    async with engine.begin() as connection:
        result = await connection.execute(_PURGE, {"batch_size": batch_size})
    return int(result.rowcount)


async def _purge_forever(engine: AsyncEngine, interval_seconds: float, batch_size: int) -> None:
    while True:
        try:
            while await purge_expired_counters(engine, batch_size=batch_size) == batch_size:
                pass
        except Exception:
            _logger.exception("purging expired rate-limit counters failed; trying again later")
        await asyncio.sleep(interval_seconds)


def start_rate_limit_purge(
    stack: AsyncExitStack,
    engine: AsyncEngine,
    *,
    interval_seconds: float = 300.0,
    batch_size: int = 1000,
) -> asyncio.Task[None]:
    """Delete ended windows' rows now and every ``interval_seconds``, until ``stack`` closes (a
    key that was never hit again, such as an unknown login name, would otherwise stay)."""
    return run_in_background(
        stack,
        _purge_forever(engine, interval_seconds, batch_size),
        name="rate-limit-purge",
    )


_HEADERS_DOC = {
    "RateLimit-Policy": {
        "description": "The quota this operation counts against (draft-ietf-httpapi-ratelimit-"
        'headers): `"name";q=<requests>;w=<window in seconds>`.',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": "What is left of that quota (draft-ietf-httpapi-ratelimit-headers): "
        '`"name";r=<remaining requests>;t=<seconds until the window ends>`.',
        "schema": {"type": "string"},
    },
}


def rate_limit_responses(
    responses: Mapping[int | str, dict[str, Any]],
    *statuses: int,
    description: str | None = None,
) -> dict[int | str, dict[str, Any]]:
    """``responses`` (FastAPI ``responses=`` entries, such as :func:`problem_responses`' ones) with
    the ``429`` problem of a rate-limited operation (with ``description``) and the
    ``RateLimit-Policy`` and ``RateLimit`` fields on it and on each of ``statuses`` (the answers
    that carry them too)."""
    entries = {status: copy.deepcopy(entry) for status, entry in responses.items()}
    entries.update(
        problem_responses(RATE_LIMITED, descriptions={429: description} if description else None)
    )
    for status in (429, *statuses):
        entries.setdefault(status, {}).setdefault("headers", {}).update(copy.deepcopy(_HEADERS_DOC))
    return entries
