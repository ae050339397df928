"""API models of provider states: what the pact verifier sends before each interaction."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ProviderStateChange", "ServiceClientRegistered"]


class ProviderStateChange(BaseModel):
    """``POST /_pact/provider-states``: set up (or tear down) one state a pact names.

    ``state`` is empty for an interaction that names none (the verifier still calls).
    """

    model_config = ConfigDict(extra="forbid")

    state: str = Field(max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    action: Literal["setup", "teardown"] = "setup"


class ServiceClientRegistered(BaseModel):
    """Parameters of ``a service client is registered``."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=100)
    client_secret: str = Field(min_length=1, max_length=256)
