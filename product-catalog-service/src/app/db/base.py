"""The declarative base every table derives from; its metadata is what Alembic compares."""

from __future__ import annotations

from typing import Any, TypeAlias

from common_libs.db import NAMING_CONVENTION
from sqlalchemy import MetaData, Row
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Base class of the service's tables."""

    # Deterministic constraint names, so that migrations can refer to (and drop) them.
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


AnyRow: TypeAlias = Row[*tuple[Any, ...]]
"""A result row of any shape (repositories return these; managers read them by name)."""
