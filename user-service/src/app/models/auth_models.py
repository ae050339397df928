"""API models of authentication: the token form, token answers, refresh and logout, the JWKS."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.config import PASSWORD_MAX_LENGTH

RefreshTokenValue = Field(min_length=1, max_length=256, description="An opaque refresh token.")


# What the form accepts, said precisely: one of the two grants (FastAPI cannot derive this).
TOKEN_FORM_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "title": "Password grant",
            "type": "object",
            "properties": {
                "grant_type": {"type": "string", "enum": ["password"]},
                "username": {"type": "string", "minLength": 1, "maxLength": 254},
                "password": {"type": "string", "minLength": 1, "maxLength": PASSWORD_MAX_LENGTH},
                "scope": {"type": "string", "maxLength": 1000},
            },
            "required": ["username", "password"],
            "additionalProperties": False,
        },
        {
            "title": "Client-credentials grant",
            "type": "object",
            "properties": {
                "grant_type": {"type": "string", "enum": ["client_credentials"]},
                "client_id": {"type": "string", "minLength": 1, "maxLength": 100},
                "client_secret": {"type": "string", "minLength": 1, "maxLength": 256},
                "scope": {"type": "string", "maxLength": 1000},
            },
            "required": ["grant_type", "client_id", "client_secret"],
            "additionalProperties": False,
        },
    ]
}


def _token_form_schema(schema: dict[str, Any]) -> None:
    title = schema.get("title")
    schema.clear()
    schema.update(TOKEN_FORM_SCHEMA, title=title)


class TokenForm(BaseModel):
    """``POST /auth/token`` (form): the OAuth2 password or client-credentials grant."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_token_form_schema)

    grant_type: Literal["password", "client_credentials"] = "password"
    username: str | None = Field(default=None, min_length=1, max_length=254)
    password: str | None = Field(default=None, min_length=1, max_length=PASSWORD_MAX_LENGTH)
    client_id: str | None = Field(default=None, min_length=1, max_length=100)
    client_secret: str | None = Field(default=None, min_length=1, max_length=256)
    scope: str | None = Field(default=None, max_length=1000, description="Accepted, ignored.")

    @model_validator(mode="after")
    def _check_grant_fields(self) -> Self:
        password_fields = (self.username, self.password)
        client_fields = (self.client_id, self.client_secret)
        if self.grant_type == "password":
            if None in password_fields or client_fields != (None, None):
                raise ValueError("the password grant takes username and password (only)")
        elif None in client_fields or password_fields != (None, None):
            raise ValueError(
                "the client_credentials grant takes client_id and client_secret (only)"
            )
        return self


class TokenPair(BaseModel):
    """The answer to a login or a refresh: an access token and a refresh token."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Seconds until the access token expires.")


class ServiceToken(BaseModel):
    """The answer to the client-credentials grant: an access token with role ``service``."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Seconds until the access token expires.")


class RefreshRequest(BaseModel):
    """``POST /auth/refresh`` and ``POST /auth/logout``: the refresh token."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: str = RefreshTokenValue


class Jwk(BaseModel):
    """One public key (Ed25519, OKP)."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    alg: Literal["EdDSA"]
    use: Literal["sig"]


class Jwks(BaseModel):
    """The JSON Web Key Set of the token issuer."""

    keys: list[Jwk]
