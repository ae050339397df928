"""Settings, read from ``CATALOG_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Self

from common_libs.settings import VerifyingServiceSettings
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

SERVICE_NAME = "product-catalog-service"


class Settings(VerifyingServiceSettings):
    """Everything the service can be configured with; secrets are ``SecretStr``."""

    model_config = SettingsConfigDict(env_prefix="CATALOG_")

    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/catalog")

    reservation_default_ttl_seconds: int = Field(default=600, ge=1, le=86_400)
    reservation_min_ttl_seconds: int = Field(default=5, ge=1, le=86_400)
    reservation_max_ttl_seconds: int = Field(default=3600, ge=1, le=86_400)
    reservation_sweep_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    reservation_sweep_batch_size: int = Field(default=100, ge=1, le=10_000)

    # Contract tests only: mounts POST /_pact/provider-states, which creates products and
    # reservations without a token so that the pact verifier can set up consumers' states.
    provider_states_enabled: bool = False

    @model_validator(mode="after")
    def _ttl_bounds_are_ordered(self) -> Self:
        low, default, high = (
            self.reservation_min_ttl_seconds,
            self.reservation_default_ttl_seconds,
            self.reservation_max_ttl_seconds,
        )
        if not low <= default <= high:
            raise ValueError("reservation TTLs must satisfy min <= default <= max")
        return self

    @model_validator(mode="after")
    def _provider_states_stay_out_of_production(self) -> Self:
        if self.provider_states_enabled and self.environment == "production":
            raise ValueError(
                "CATALOG_PROVIDER_STATES_ENABLED is for contract tests and refused in production"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own and pass them to ``create_app``)."""
    return Settings()
