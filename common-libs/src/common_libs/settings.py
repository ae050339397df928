"""The settings every service reads alike, as pydantic-settings base classes.

A service subclasses one of them with its own prefix and its database's default URL::

    class Settings(VerifyingServiceSettings):
        model_config = SettingsConfigDict(env_prefix="CATALOG_")
        database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/catalog")

``model_config`` merges with the base's: unknown variables are ignored and a rejected value (a
URL with its password in the wrong variable, say) is never echoed in the validation error.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DENY_LIST_MARGIN_SECONDS", "Environment", "ServiceSettings", "VerifyingServiceSettings"]

Environment = Literal["development", "test", "production"]
DENY_LIST_MARGIN_SECONDS = 60.0


class ServiceSettings(BaseSettings):
    """The environment, logging, database and event broker settings of every service."""

    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    environment: Environment = "development"
    log_level: str = "INFO"
    log_json: bool = True

    database_url: SecretStr
    # Sized for the usual concurrency: overflow connections are closed when returned, so a pool
    # that is too small opens (and authenticates) a new connection for every busy request.
    database_pool_size: int = Field(default=20, ge=1, le=100)
    database_max_overflow: int = Field(default=10, ge=0, le=100)
    # A pooled connection idle this long is pinged before use (instead of pinging every time).
    database_idle_ping_seconds: float = Field(default=10.0, ge=0, le=3600)

    # The event broker (NATS with JetStream), one for the whole fleet: read from ``NATS_URL``
    # without the service's prefix.
    nats_url: str = Field(
        default="nats://127.0.0.1:4222", validation_alias=AliasChoices("NATS_URL", "nats_url")
    )

    # Access tokens are issued by user-service: its issuer name, not this service's.
    jwt_issuer: str = "fleet-user-service"
    jwt_audience: str = "fleet"
    # The longest lifetime of an access token anywhere in the fleet (user-service issues them
    # for its ACCESS_TOKEN_TTL_SECONDS, which may not exceed it): how long the deny list must
    # remember a deleted account (see deny_list_keep_seconds).
    access_token_max_lifetime_seconds: int = Field(default=900, ge=30, le=86_400)

    @property
    def deny_list_keep_seconds(self) -> float:
        """How long a deleted account's id stays in the deny list: the longest access-token
        lifetime, plus a margin for clocks that disagree a little and for a token refreshed
        while the deletion commits (the verifiers allow no leeway past ``exp``)."""
        return self.access_token_max_lifetime_seconds + DENY_LIST_MARGIN_SECONDS


class VerifyingServiceSettings(ServiceSettings):
    """A service that verifies user-service's tokens with the keys of its JWKS endpoint."""

    jwks_url: str = "http://127.0.0.1:8001/auth/jwks"
    http_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
