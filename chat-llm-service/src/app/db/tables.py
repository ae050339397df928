"""The service's tables (SQLAlchemy 2 ``Mapped`` classes); Alembic migrations must match them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from common_libs.events.schema import add_inbox_tables
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base

__all__ = [
    "SEARCH_CONFIG",
    "Base",
    "CatalogProductRow",
    "Conversation",
    "DailyUsage",
    "Message",
    "ReadModelState",
    "UsageRecord",
]

# The text-search configuration of the read model's ``search`` column and of every query on it:
# English stems product words ("shoes" finds "Shoe"), as the catalog's own search does.
SEARCH_CONFIG = "english"
SEARCH_VECTOR_SQL = (
    f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, name), 'A') || "
    f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, sku), 'B') || "
    f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, category), 'B') || "
    f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, description), 'C')"
)


class Conversation(Base):
    """A chat between one user and the assistant."""

    __tablename__ = "conversations"
    __table_args__ = (
        # Serves the owner's list, newest first (keyset pagination on created_at, id).
        Index("ix_conversations_owner_created", "owner_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Message(Base):
    """One message of a conversation; ``position`` orders them (ids are random)."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'assistant', 'tool')", name="role"),
        Index("ix_messages_conversation_position", "conversation_id", "position"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    is_complete: Mapped[bool] = mapped_column(Boolean, server_default="true")
    # An assistant message that asked for tools: its calls ([{id, name, arguments}]); a ``tool``
    # message: the call it answers. Clients never see either (see chat_repository).
    tool_calls: Mapped[list[dict[str, str]] | None] = mapped_column(JSONB(none_as_null=True))
    tool_call_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UsageRecord(Base):
    """The tokens one upstream call used (chat or embeddings), for accounting."""

    __tablename__ = "usage_records"
    __table_args__ = (
        CheckConstraint("kind IN ('chat', 'embedding')", name="kind"),
        CheckConstraint(
            "prompt_tokens >= 0 AND completion_tokens >= 0 AND total_tokens >= 0",
            name="non_negative",
        ),
        Index("ix_usage_records_user_created", "user_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    total_tokens: Mapped[int] = mapped_column(BigInteger)
    # True when the upstream reported no usage (a cut stream) and tiktoken counted it.
    is_estimated: Mapped[bool] = mapped_column(Boolean)
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DailyUsage(Base):
    """A user's tokens on one UTC day, and the tokens reserved by calls still in flight."""

    __tablename__ = "daily_usage"
    __table_args__ = (
        CheckConstraint(
            "prompt_tokens >= 0 AND completion_tokens >= 0 AND total_tokens >= 0 "
            "AND reserved_tokens >= 0",
            name="non_negative",
        ),
    )

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    total_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    reserved_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")


class CatalogProductRow(Base):
    """A product of the catalog's read model (kept from the CATALOG stream, see
    ``app.services.catalog_read_model``); ``search`` is what grounding searches."""

    __tablename__ = "catalog_products"
    __table_args__ = (
        Index("ix_catalog_products_search", "search", postgresql_using="gin"),
        # Misspelled product words: "headphnoes" is close to a word of "Wireless Headphones".
        Index(
            "ix_catalog_products_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
    )

    # Text without lengths: the read model keeps whatever the catalog publishes.
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    sku: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    price: Mapped[Decimal] = mapped_column(Numeric)
    currency: Mapped[str] = mapped_column(Text)
    stock_available: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    search: Mapped[str] = mapped_column(TSVECTOR, Computed(SEARCH_VECTOR_SQL, persisted=True))


class ReadModelState(Base):
    """A read model whose initial fill finished (its row exists from then on)."""

    __tablename__ = "read_model_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    filled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# The consumers' inbox (the events they handled) and their version guard.
add_inbox_tables(Base.metadata)
