"""Provider states for the pact verifier (contract tests only; never mounted in production)."""

from __future__ import annotations

from fastapi import APIRouter

from app.dependencies import DbConnection
from app.models.provider_state_models import ProviderStateChange
from app.services import provider_state_manager

router = APIRouter(prefix="/_pact", include_in_schema=False)


@router.post("/provider-states")
async def set_up_provider_state(
    change: ProviderStateChange, connection: DbConnection
) -> dict[str, str]:
    """Set up the state an interaction of a consumer's pact starts from; answer its ids."""
    return await provider_state_manager.set_up_state(connection=connection, change=change)
