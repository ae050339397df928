"""The declarative base every table derives from; its metadata is what Alembic compares."""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import MetaData, Row
from sqlalchemy.orm import DeclarativeBase

# Deterministic constraint names, so that migrations can refer to (and drop) them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of the service's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


AnyRow: TypeAlias = Row[*tuple[Any, ...]]
"""A result row of any shape (repositories return these; managers read them by name)."""
