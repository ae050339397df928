"""The catalog's products as this service reads them: from the catalog's events and pages (its
``GET /products/{id}`` representation), and from its own read model."""

from __future__ import annotations

import uuid
from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict

__all__ = ["CatalogProduct", "ProductPage"]


class CatalogProduct(BaseModel):
    """A catalog product: the fields the read model keeps (``created_at`` is ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: uuid.UUID
    sku: str
    name: str
    description: str
    category: str
    price: Decimal
    currency: str
    stock_available: int
    updated_at: AwareDatetime


class ProductPage(BaseModel):
    """One page of the catalog's ``GET /products``."""

    model_config = ConfigDict(extra="ignore")

    items: list[CatalogProduct]
    next_cursor: str | None = None
