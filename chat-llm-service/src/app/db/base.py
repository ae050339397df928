"""The declarative base every table derives from; its metadata is what Alembic compares."""

from __future__ import annotations

from common_libs.db import NAMING_CONVENTION
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Base class of the service's tables."""

    # Deterministic constraint names, so that migrations can refer to (and drop) them.
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
