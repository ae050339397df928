"""Products: public reads, admin writes."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from common_libs.pagination import Page
from common_libs.problem_types import (
    AUTHENTICATION_REQUIRED,
    INSUFFICIENT_SCOPE,
    INVALID_CURSOR,
    INVALID_TOKEN,
    MALFORMED_REQUEST,
    SERVICE_UNAVAILABLE,
    TOKEN_EXPIRED,
    VALIDATION_FAILED,
)
from common_libs.problems import problem_responses
from fastapi import APIRouter, Depends, Response, status

from app.dependencies import AdminPrincipal, DbConnection, PageQuery, ReadEngine
from app.models.product_models import (
    Product,
    ProductCreate,
    ProductFilters,
    ProductUpdate,
    product_filters,
)
from app.services import product_manager
from app.services.errors import (
    DuplicateSku,
    ProductHasHeldStock,
    ProductNotFound,
    StockBelowHeld,
)

router = APIRouter(tags=["products"])

# What each status of these routes may answer, by problem type (README, "Problem types"): every
# route reads the database (503 while it is lost, like the token issuer's keys) and may refuse
# its input (422); the admin's writes need a token (401) of an admin (403).
_READ = (VALIDATION_FAILED, SERVICE_UNAVAILABLE)
_ADMIN_WRITE = (
    AUTHENTICATION_REQUIRED,
    INVALID_TOKEN,
    TOKEN_EXPIRED,
    INSUFFICIENT_SCOPE,
    *_READ,
)
_PROBLEMS = {
    503: "The database or the token issuer's keys are unavailable right now (`Retry-After`).",
}


@router.get(
    "/products",
    response_model=Page[Product],
    responses=problem_responses(
        *_READ,
        INVALID_CURSOR,
        descriptions={
            **_PROBLEMS,
            422: "A filter or `limit` out of bounds, or a `cursor` not from a previous page.",
        },
    ),
)
async def list_products(
    filters: Annotated[ProductFilters, Depends(product_filters)],
    page: PageQuery,
    engine: ReadEngine,
) -> Page[Product]:
    """Live products matching every filter given, newest first."""
    return await product_manager.list_products(engine=engine, filters=filters, page=page)


@router.get(
    "/products/{product_id}",
    response_model=Product,
    responses=problem_responses(*_READ, ProductNotFound, descriptions=_PROBLEMS),
)
async def get_product(product_id: UUID, engine: ReadEngine) -> Response:
    """One live product."""
    body = await product_manager.get_product_json(engine=engine, product_id=product_id)
    # Already the response model's JSON: FastAPI would validate and serialise it a second time.
    return Response(body, media_type="application/json")


@router.post(
    "/products",
    status_code=status.HTTP_201_CREATED,
    response_model=Product,
    responses=problem_responses(
        MALFORMED_REQUEST,
        *_ADMIN_WRITE,
        DuplicateSku,
        descriptions={**_PROBLEMS, 409: "Another live product has this SKU."},
    ),
)
async def create_product(
    product: ProductCreate, connection: DbConnection, _: AdminPrincipal
) -> Product:
    """Add a product (admin)."""
    return await product_manager.create_product(connection=connection, product=product)


@router.patch(
    "/products/{product_id}",
    response_model=Product,
    responses=problem_responses(
        MALFORMED_REQUEST,
        *_ADMIN_WRITE,
        ProductNotFound,
        DuplicateSku,
        StockBelowHeld,
        descriptions={
            **_PROBLEMS,
            409: "The SKU is taken, or stock would drop below what is held.",
        },
    ),
)
async def update_product(
    product_id: UUID, update: ProductUpdate, connection: DbConnection, _: AdminPrincipal
) -> Product:
    """Change some fields of a product (admin)."""
    return await product_manager.update_product(
        connection=connection, product_id=product_id, update=update
    )


@router.delete(
    "/products/{product_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(
        *_ADMIN_WRITE,
        ProductNotFound,
        ProductHasHeldStock,
        descriptions={**_PROBLEMS, 409: "Reservations hold stock of this product."},
    ),
)
async def delete_product(product_id: UUID, connection: DbConnection, _: AdminPrincipal) -> None:
    """Delete a product (admin); refused while reservations hold stock of it."""
    await product_manager.delete_product(connection=connection, product_id=product_id)
