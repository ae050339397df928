"""Categories: derived from the live products."""

from __future__ import annotations

from common_libs.problem_types import SERVICE_UNAVAILABLE, VALIDATION_FAILED
from common_libs.problems import problem_responses
from fastapi import APIRouter

from app.dependencies import ReadEngine
from app.models.product_models import CategorySummary
from app.services import product_manager

router = APIRouter(tags=["categories"])


@router.get(
    "/categories",
    response_model=list[CategorySummary],
    responses=problem_responses(
        VALIDATION_FAILED,
        SERVICE_UNAVAILABLE,
        descriptions={
            422: "Text that cannot be stored in a header or the query (like every route).",
            503: "The database is unavailable right now (`Retry-After`).",
        },
    ),
)
async def list_categories(engine: ReadEngine) -> list[CategorySummary]:
    """Every category that holds a live product, by name, with its product count."""
    return await product_manager.list_categories(engine=engine)
