"""Settings, read from ``ORDERS_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Self

from common_libs.settings import VerifyingServiceSettings
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

SERVICE_NAME = "order-processing-service"


class Settings(VerifyingServiceSettings):
    """Everything the service can be configured with; secrets are ``SecretStr``."""

    model_config = SettingsConfigDict(env_prefix="ORDERS_")

    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/orders")

    catalog_url: str = "http://127.0.0.1:8002"
    users_url: str = "http://127.0.0.1:8001"
    service_client_id: str = Field(default=SERVICE_NAME, pattern=r"^[A-Za-z0-9._-]{1,100}$")
    service_client_secret: SecretStr = SecretStr("")
    catalog_deadline_seconds: float = Field(default=3.0, gt=0, le=30)
    reservation_ttl_seconds: int = Field(default=600, ge=5, le=3600)

    reconcile_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    pending_max_age_seconds: float = Field(default=30.0, gt=0, le=86_400)
    idempotency_ttl_hours: int = Field(default=24, ge=24, le=24 * 30)

    # Per user, whatever the address and on every replica (counted in this service's database):
    # at most this many POST /orders per window; the gateway's limit is per client address.
    place_order_limit: int = Field(default=10, ge=1, le=1_000_000_000)
    place_order_window_seconds: int = Field(default=60, ge=1, le=86_400)

    # Test-only: hold the saga after the reservation is held, so that a test can kill the process.
    test_pause_after_reserve_seconds: float = Field(default=0.0, ge=0, le=3600)
    # Contract tests only: mounts POST /_pact/provider-states, which creates orders without a
    # token so that the pact verifier can set up consumers' states.
    provider_states_enabled: bool = False

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        # A request spends at most two catalog deadlines (reserve, then commit); the reconciler
        # must not take over an order whose request is still within them.
        if self.pending_max_age_seconds <= 2 * self.catalog_deadline_seconds:
            raise ValueError(
                "ORDERS_PENDING_MAX_AGE_SECONDS must exceed twice ORDERS_CATALOG_DEADLINE_SECONDS"
            )
        if self.reservation_ttl_seconds <= self.pending_max_age_seconds:
            raise ValueError(
                "ORDERS_RESERVATION_TTL_SECONDS must exceed ORDERS_PENDING_MAX_AGE_SECONDS"
            )
        if self.environment == "production":
            if self.test_pause_after_reserve_seconds > 0:
                raise ValueError("ORDERS_TEST_PAUSE_AFTER_RESERVE_SECONDS is refused in production")
            if self.provider_states_enabled:
                raise ValueError(
                    "ORDERS_PROVIDER_STATES_ENABLED is for contract tests and refused in production"
                )
            if not self.service_client_secret.get_secret_value():
                raise ValueError("ORDERS_SERVICE_CLIENT_SECRET is required in production")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own and pass them to ``create_app``)."""
    return Settings()
