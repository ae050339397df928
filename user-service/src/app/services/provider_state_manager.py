"""Provider states for contract tests: the situations consumers' pacts start from.

Mounted only when ``USERS_PROVIDER_STATES_ENABLED`` is set (refused in production). Service
clients are configuration (``USERS_SERVICE_CLIENTS``), not rows: their state cannot be made by a
request, so it is checked with the token endpoint's own rule, and a process started without the
client fails the state (and so the verification) with an answer that says what is missing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr, ValidationError

from app.models.provider_state_models import ProviderStateChange, ServiceClientRegistered
from app.security.passwords import PasswordHashing
from app.security.tokens import TokenIssuer
from app.services import auth_manager
from app.services.errors import (
    InvalidClientCredentials,
    ProviderStateUnmet,
    UnknownProviderState,
)

__all__ = ["STATES", "StateContext", "set_up_state"]

StateValues = dict[str, str]


@dataclass(frozen=True, slots=True)
class StateContext:
    """What the states are checked against: the process's hashing, keys and clients."""

    passwords: PasswordHashing
    tokens: TokenIssuer
    clients: Mapping[str, SecretStr]


_StateHandler = Callable[[StateContext, dict[str, Any]], Awaitable[StateValues]]


async def _service_client_registered(context: StateContext, params: dict[str, Any]) -> StateValues:
    try:
        wanted = ServiceClientRegistered.model_validate(params)
    except ValidationError as exc:
        raise ProviderStateUnmet(f"Invalid parameters: {exc.errors()}") from None
    try:
        await auth_manager.login_service_client(
            passwords=context.passwords,
            tokens=context.tokens,
            clients=context.clients,
            client_id=wanted.client_id,
            client_secret=wanted.client_secret,
        )
    except InvalidClientCredentials:
        raise ProviderStateUnmet(
            f"Service client {wanted.client_id!r} is not registered with this secret: start the "
            "service with its hash in USERS_SERVICE_CLIENTS."
        ) from None
    return {}


async def _nothing(context: StateContext, params: dict[str, Any]) -> StateValues:
    return {}


STATES: dict[str, _StateHandler] = {
    "": _nothing,
    "a service client is registered": _service_client_registered,
}


async def set_up_state(*, context: StateContext, change: ProviderStateChange) -> StateValues:
    """Make sure ``change.state`` holds; return the values it made (teardowns change nothing)."""
    handler = STATES.get(change.state)
    if handler is None:
        raise UnknownProviderState(change.state, known=sorted(name for name in STATES if name))
    if change.action == "teardown":
        return {}
    return await handler(context, change.params)
