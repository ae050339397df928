"""The settings every service reads alike, as pydantic-settings base classes.

A service subclasses one of them with its own prefix and its database's default URL::

    class Settings(VerifyingServiceSettings):
        model_config = SettingsConfigDict(env_prefix="CATALOG_")
        database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/catalog")

``model_config`` merges with the base's: unknown variables are ignored and a rejected value (a
URL with its password in the wrong variable, say) is never echoed in the validation error.

Secrets can come as files: one file per setting, named like its variable (``CATALOG_DATABASE_URL``),
in the folder ``SECRETS_DIR`` names (unprefixed, one for the whole fleet), by default
``/run/secrets``, where the Kubernetes manifests mount the service's Secret. A folder named by
``SECRETS_DIR`` must exist; the default one is read only when it does, so that local runs need
none. An environment variable wins over a file of the same name (pydantic-settings' order), so a
local run or a test can still set any value through the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

__all__ = [
    "DEFAULT_SECRETS_DIR",
    "DENY_LIST_MARGIN_SECONDS",
    "SECRETS_DIR_VARIABLE",
    "Environment",
    "ServiceSettings",
    "VerifyingServiceSettings",
    "secrets_dir",
]

Environment = Literal["development", "test", "production"]
DENY_LIST_MARGIN_SECONDS = 60.0
# Where the manifests mount the service's Secret, one file per key; SECRETS_DIR names another.
DEFAULT_SECRETS_DIR = Path("/run/secrets")
SECRETS_DIR_VARIABLE = "SECRETS_DIR"


def secrets_dir() -> Path | None:
    """The secret files' folder: ``SECRETS_DIR`` (which must exist), else the default if there."""
    configured = os.environ.get(SECRETS_DIR_VARIABLE, "")
    if configured:
        directory = Path(configured)
        if not directory.is_dir():
            raise FileNotFoundError(f"{SECRETS_DIR_VARIABLE} names no folder: {directory}")
        return directory
    return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None


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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then ``.env``, then the secret files (module doc)."""
        directory = secrets_dir()
        # Only a folder that exists: pydantic-settings warns about a missing one on every read.
        files = () if directory is None else (SecretsSettingsSource(settings_cls, directory),)
        return (init_settings, env_settings, dotenv_settings, *files)

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
