"""A typed client for product-catalog-service's public product search (``GET /products``)."""

from __future__ import annotations

import asyncio

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["CatalogClient", "CatalogProduct", "CatalogUnavailable"]


class CatalogProduct(BaseModel):
    """The fields of a catalog product the assistant uses (others are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    sku: str
    name: str
    description: str = ""
    category: str = ""
    price: str
    currency: str = "USD"
    stock_available: int = 0


class _ProductPage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[CatalogProduct]
    next_cursor: str | None = None


class CatalogUnavailable(Exception):
    """The catalog did not answer in time, answered an error, or answered something else."""


class CatalogClient:
    """Search products over the one long-lived HTTP client made in the lifespan."""

    def __init__(self, http: httpx.AsyncClient, *, deadline_seconds: float) -> None:
        self._http = http
        self._deadline = deadline_seconds

    async def search_products(self, *, query: str, limit: int) -> list[CatalogProduct]:
        """The first ``limit`` products matching ``query``; raises CatalogUnavailable."""
        try:
            # A hard deadline on top of the client's per-read timeouts: a catalog that
            # trickles its answer must not hold the chat up.
            async with asyncio.timeout(self._deadline):
                response = await self._http.get("/products", params={"q": query, "limit": limit})
            response.raise_for_status()
            return _ProductPage.model_validate_json(response.content).items[:limit]
        except (TimeoutError, httpx.HTTPError, ValidationError) as exc:
            raise CatalogUnavailable(f"{type(exc).__name__}: {exc}") from exc
