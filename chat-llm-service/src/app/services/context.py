"""What the chat managers work with: settings, the LLM client, the catalog's read model, the
orders service's client, the engine and the session factory."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.clients.orders_client import OrdersClient
from app.config import Settings
from app.services.catalog_read_model import CatalogReadModel
from app.services.llm_integration import LlmClient

__all__ = ["ChatServices"]


@dataclass(frozen=True, slots=True)
class ChatServices:
    """The process-wide collaborators of a chat request (built from the app's state).

    Chat calls take seconds, so they never hold a database connection while waiting: they run
    short transactions of their own from ``sessions`` (read, then store), and single statements
    on connections of ``engine`` (the quota hold).
    """

    settings: Settings
    llm: LlmClient
    catalog: CatalogReadModel
    # The caller's orders, read with the caller's own token (the order tools).
    orders: OrdersClient
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
