"""Categories: derived from the live products."""

from __future__ import annotations

from fastapi import APIRouter

from app.dependencies import ReadEngine
from app.models.product_models import CategorySummary
from app.services import product_manager

router = APIRouter(tags=["categories"])


@router.get("/categories", response_model=list[CategorySummary])
async def list_categories(engine: ReadEngine) -> list[CategorySummary]:
    """Every category that holds a live product, by name, with its product count."""
    return await product_manager.list_categories(engine=engine)
