"""Settings, read from ``ORDERS_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_NAME = "order-processing-service"


class Settings(BaseSettings):
    """Everything the service can be configured with; secrets are ``SecretStr``."""

    # Validation errors would otherwise echo the rejected value, which may be a secret.
    model_config = SettingsConfigDict(
        env_prefix="ORDERS_", extra="ignore", hide_input_in_errors=True
    )

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    log_json: bool = True

    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/orders")
    # Sized for the usual concurrency: overflow connections are closed when returned, so a pool
    # that is too small opens (and authenticates) a new connection for every busy request.
    database_pool_size: int = Field(default=20, ge=1, le=100)
    database_max_overflow: int = Field(default=10, ge=0, le=100)
    # A pooled connection idle this long is pinged before use (instead of pinging every time).
    database_idle_ping_seconds: float = Field(default=10.0, ge=0, le=3600)

    # Access tokens are issued by user-service: its issuer name, not this service's.
    jwt_issuer: str = "fleet-user-service"
    jwt_audience: str = "fleet"
    jwks_url: str = "http://127.0.0.1:8001/auth/jwks"
    http_timeout_seconds: float = Field(default=3.0, gt=0, le=60)

    catalog_url: str = "http://127.0.0.1:8002"
    users_url: str = "http://127.0.0.1:8001"
    service_client_id: str = Field(default=SERVICE_NAME, pattern=r"^[A-Za-z0-9._-]{1,100}$")
    service_client_secret: SecretStr = SecretStr("")
    catalog_deadline_seconds: float = Field(default=3.0, gt=0, le=30)
    reservation_ttl_seconds: int = Field(default=600, ge=5, le=3600)

    reconcile_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    pending_max_age_seconds: float = Field(default=30.0, gt=0, le=86_400)
    idempotency_ttl_hours: int = Field(default=24, ge=24, le=24 * 30)

    # Test-only: hold the saga after the reservation is held, so that a test can kill the process.
    test_pause_after_reserve_seconds: float = Field(default=0.0, ge=0, le=3600)

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
            if not self.service_client_secret.get_secret_value():
                raise ValueError("ORDERS_SERVICE_CLIENT_SECRET is required in production")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own and pass them to ``create_app``)."""
    return Settings()
