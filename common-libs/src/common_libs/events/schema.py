"""The events' tables: a producer's ``outbox`` and ``event_versions``, a consumer's ``inbox`` and
``consumed_versions``.

A service adds them to its models' metadata (so that its schema check covers them) and creates
them in a migration of its own::

    add_outbox_tables(Base.metadata)              # app/db/tables.py

    def upgrade() -> None:                         # migrations/versions/000N_outbox.py
        create_outbox_tables(op)

The tables are version 1 of this schema: a later change comes as new functions, never as a
change to these, so that an old migration keeps creating what it created.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "add_inbox_tables",
    "add_outbox_tables",
    "create_inbox_tables",
    "create_outbox_tables",
    "drop_inbox_tables",
    "drop_outbox_tables",
]

OUTBOX_CHANNEL = "outbox"
"""The ``NOTIFY`` channel a write signals and the relay listens on."""


class _Operations(Protocol):
    def get_bind(self) -> Any: ...


def add_outbox_tables(metadata: MetaData) -> tuple[Table, Table]:
    """``outbox`` (events not yet acknowledged by the broker) and ``event_versions``."""
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(always=True), nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("type", String(200), nullable=False),
        Column("source", String(100), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("version", BigInteger, nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("request_id", String(128)),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("data", JSONB, nullable=False),
        PrimaryKeyConstraint("id", name="pk_outbox"),
        # The relay's "no earlier row of this subject is pending" check.
        Index("ix_outbox_subject_id", "subject", "id"),
    )
    versions = Table(
        "event_versions",
        metadata,
        Column("entity", String(100), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("version", BigInteger, nullable=False),
        PrimaryKeyConstraint("entity", "subject", name="pk_event_versions"),
    )
    return outbox, versions


def add_inbox_tables(metadata: MetaData) -> tuple[Table, Table]:
    """``inbox`` (the ids of events each consumer handled) and ``consumed_versions``."""
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(100), nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("handled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
        Index("ix_inbox_handled_at", "handled_at"),
    )
    versions = Table(
        "consumed_versions",
        metadata,
        Column("consumer", String(100), nullable=False),
        Column("entity", String(100), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("version", BigInteger, nullable=False),
        PrimaryKeyConstraint("consumer", "entity", "subject", name="pk_consumed_versions"),
    )
    return inbox, versions


def _create(op: _Operations, tables: tuple[Table, Table]) -> None:
    for table in tables:
        table.create(op.get_bind())


def _drop(op: _Operations, tables: tuple[Table, Table]) -> None:
    for table in reversed(tables):
        table.drop(op.get_bind())


def create_outbox_tables(op: _Operations) -> None:
    """In a migration's ``upgrade()``: create ``outbox`` and ``event_versions``."""
    _create(op, add_outbox_tables(MetaData()))


def drop_outbox_tables(op: _Operations) -> None:
    """In a migration's ``downgrade()``: drop them."""
    _drop(op, add_outbox_tables(MetaData()))


def create_inbox_tables(op: _Operations) -> None:
    """In a migration's ``upgrade()``: create ``inbox`` and ``consumed_versions``."""
    _create(op, add_inbox_tables(MetaData()))


def drop_inbox_tables(op: _Operations) -> None:
    """In a migration's ``downgrade()``: drop them."""
    _drop(op, add_inbox_tables(MetaData()))
