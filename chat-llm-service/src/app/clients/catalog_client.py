"""A typed client for product-catalog-service's public product list (``GET /products``).

Only the read model's initial fill uses it (``app.services.catalog_read_model``): a chat turn
reads the read model and calls no other service.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from pydantic import ValidationError

from app.models.catalog_models import CatalogProduct, ProductPage

__all__ = ["PAGE_SIZE", "CatalogClient", "CatalogUnavailable"]

PAGE_SIZE = 100
"""The catalog's largest page (API.md: ``limit`` 1..100)."""


class CatalogUnavailable(Exception):
    """The catalog did not answer in time, answered an error, or answered something else."""


class CatalogClient:
    """Page through the catalog over the one long-lived HTTP client made in the lifespan."""

    def __init__(self, http: httpx.AsyncClient, *, deadline_seconds: float) -> None:
        self._http = http
        self._deadline = deadline_seconds

    async def list_products(self, *, limit: int, cursor: str | None = None) -> ProductPage:
        """One page of the catalog's products; raises CatalogUnavailable."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        try:
            # A hard deadline on top of the client's per-read timeouts: a catalog that
            # trickles its answer fails this attempt instead of holding it forever.
            async with asyncio.timeout(self._deadline):
                response = await self._http.get("/products", params=params)
            response.raise_for_status()
            return ProductPage.model_validate_json(response.content)
        except (TimeoutError, httpx.HTTPError, ValidationError) as exc:
            raise CatalogUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def pages(self, *, limit: int = PAGE_SIZE) -> AsyncIterator[list[CatalogProduct]]:
        """Every product, a page at a time, following ``next_cursor`` to the end."""
        cursor: str | None = None
        while True:
            page = await self.list_products(limit=limit, cursor=cursor)
            yield page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor
