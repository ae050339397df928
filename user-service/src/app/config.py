"""Settings, read from ``USERS_*`` environment variables."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Self

from common_libs.settings import ServiceSettings
from pydantic import AwareDatetime, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from app.models.email_address import EmailAddress

SERVICE_NAME = "user-service"
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
PRODUCTION_ADMIN_PASSWORD_MIN_LENGTH = 12
_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")
_WEAK_PASSWORDS = frozenset(
    {"password", "password123", "changeme", "changeme123", "admin", "administrator", "secret"}
)


class InsecureSettingsError(RuntimeError):
    """The settings are unsafe where they are used (the message never contains a secret)."""


class Settings(ServiceSettings):
    """Everything the service can be configured with; secrets are ``SecretStr``."""

    model_config = SettingsConfigDict(env_prefix="USERS_")

    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/users")

    # jwt_issuer and jwt_audience (ServiceSettings) name this service's own tokens here. The
    # lifetime may not exceed access_token_max_lifetime_seconds (ServiceSettings), which every
    # service's deny list of deleted accounts covers.
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=300, le=366 * 86_400)
    refresh_token_purge_interval_seconds: float = Field(default=3600.0, gt=0, le=86_400)

    signing_key_pem: SecretStr | None = None
    signing_key_file: Path = Path(".data/signing-key.pem")
    previous_public_keys_pem: str | None = None
    previous_keys_retired_at: AwareDatetime | None = None

    admin_email: EmailAddress | None = None
    admin_password: SecretStr | None = None
    admin_full_name: str = Field(default="Administrator", min_length=1, max_length=200)

    service_clients: dict[str, SecretStr] = Field(default_factory=dict)

    argon2_time_cost: int = Field(default=2, ge=1, le=20)
    argon2_memory_cost_kib: int = Field(default=19_456, ge=1024, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(default=1, ge=1, le=16)
    password_hash_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)

    # Failed logins per account (the normalised username, known or not), whatever the address
    # and on every replica (counted in this service's database): past the limit, every login of
    # that username answers 429, a correct password too, until the window ends.
    login_failure_limit: int = Field(default=5, ge=1, le=1_000_000_000)
    login_failure_window_seconds: int = Field(default=60, ge=1, le=3600)

    # Contract tests only: mounts POST /_pact/provider-states for the pact verifier.
    provider_states_enabled: bool = False

    @field_validator("service_clients")
    @classmethod
    def _check_service_clients(cls, clients: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for client_id, secret_hash in clients.items():
            if not _CLIENT_ID.fullmatch(client_id):
                raise ValueError("service client ids are 1..100 characters of [A-Za-z0-9._-]")
            if not secret_hash.get_secret_value().startswith("$argon2id$"):
                raise ValueError(
                    f"the secret of service client {client_id} is not an argon2id hash"
                )
        return clients

    @model_validator(mode="after")
    def _check_access_token_lifetime(self) -> Self:
        if self.access_token_ttl_seconds > self.access_token_max_lifetime_seconds:
            raise ValueError(
                "USERS_ACCESS_TOKEN_TTL_SECONDS may not exceed "
                "USERS_ACCESS_TOKEN_MAX_LIFETIME_SECONDS: the services' deny lists forget a "
                "deleted account after that long (raise the maximum in every service first)"
            )
        return self

    @model_validator(mode="after")
    def _check_admin(self) -> Self:
        if (self.admin_email is None) != (self.admin_password is None):
            raise ValueError("USERS_ADMIN_EMAIL and USERS_ADMIN_PASSWORD go together")
        if self.admin_password is not None:
            length = len(self.admin_password.get_secret_value())
            if not PASSWORD_MIN_LENGTH <= length <= PASSWORD_MAX_LENGTH:
                raise ValueError(
                    f"USERS_ADMIN_PASSWORD must be {PASSWORD_MIN_LENGTH}..{PASSWORD_MAX_LENGTH} "
                    "characters"
                )
        return self

    @property
    def is_local(self) -> bool:
        """True outside production (development and test runs)."""
        return self.environment != "production"

    def production_problems(self) -> list[str]:
        """Why these settings may not serve production traffic (empty when they may)."""
        if self.is_local:
            return []
        problems = []
        if self.provider_states_enabled:
            problems.append("USERS_PROVIDER_STATES_ENABLED is for contract tests only")
        if self.signing_key_pem is None:
            problems.append("USERS_SIGNING_KEY_PEM is required (a generated key is for local runs)")
        if self.admin_password is not None:
            password = self.admin_password.get_secret_value()
            local_part = (self.admin_email or "").split("@", 1)[0].lower()
            if (
                len(password) < PRODUCTION_ADMIN_PASSWORD_MIN_LENGTH
                or password.lower() in _WEAK_PASSWORDS
                or (local_part and local_part in password.lower())
                or len(set(password)) < 6
            ):
                problems.append(
                    "USERS_ADMIN_PASSWORD is too weak for production: at least "
                    f"{PRODUCTION_ADMIN_PASSWORD_MIN_LENGTH} characters, at least 6 different "
                    "ones, no well-known password, not containing the email's local part"
                )
        return problems


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own and pass them to ``create_app``)."""
    return Settings()
