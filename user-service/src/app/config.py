"""Settings, read from ``USERS_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_NAME = "user-service"


class Settings(BaseSettings):
    """Everything the service can be configured with; secrets are ``SecretStr``."""

    model_config = SettingsConfigDict(env_prefix="USERS_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    log_json: bool = True

    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/users")
    database_pool_size: int = Field(default=10, ge=1, le=100)
    database_max_overflow: int = Field(default=10, ge=0, le=100)

    jwt_issuer: str = "fleet-user-service"
    jwt_audience: str = "fleet"
    jwks_url: str = "http://127.0.0.1:8001/auth/jwks"
    http_timeout_seconds: float = Field(default=3.0, gt=0, le=60)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own and pass them to ``create_app``)."""
    return Settings()
