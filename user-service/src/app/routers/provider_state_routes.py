"""Provider states for the pact verifier (contract tests only; refused in production)."""

from __future__ import annotations

from fastapi import APIRouter

from app.dependencies import AppSettings, Passwords, Tokens
from app.models.provider_state_models import ProviderStateChange
from app.services import provider_state_manager
from app.services.provider_state_manager import StateContext

router = APIRouter(prefix="/_pact", include_in_schema=False)


@router.post("/provider-states")
async def set_up_provider_state(
    change: ProviderStateChange, passwords: Passwords, tokens: Tokens, settings: AppSettings
) -> dict[str, str]:
    """Make sure the state an interaction of a consumer's pact starts from holds."""
    context = StateContext(passwords=passwords, tokens=tokens, clients=settings.service_clients)
    return await provider_state_manager.set_up_state(context=context, change=change)
