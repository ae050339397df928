"""API models of accounts: what clients send and what they get back (never a password hash)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from common_libs.text_inputs import WHITESPACE
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from app.config import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from app.models.email_address import EmailAddress

# At least one visible character (whitespace as every regex engine counts it), no control
# characters (they have no place in a name and PostgreSQL refuses NUL); surrounding whitespace
# is dropped.
_FULL_NAME_PATTERN = rf"^[^\x00-\x1f\x7f]*[^{WHITESPACE}\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"

FullName = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=_FULL_NAME_PATTERN, examples=["Ada Lovelace"]),
    AfterValidator(str.strip),
]
Password = Annotated[
    str,
    Field(
        min_length=PASSWORD_MIN_LENGTH,
        max_length=PASSWORD_MAX_LENGTH,
        description=f"{PASSWORD_MIN_LENGTH}..{PASSWORD_MAX_LENGTH} characters.",
    ),
]


class UserCreate(BaseModel):
    """``POST /users``: a new customer account."""

    model_config = ConfigDict(extra="forbid")

    email: EmailAddress
    password: Password
    full_name: FullName


def _update_schema(schema: dict[str, Any]) -> None:
    # Every field may be left out, none may be null: drop the "null" branch pydantic adds.
    for name, field in schema["properties"].items():
        options = [option for option in field.pop("anyOf") if option != {"type": "null"}]
        schema["properties"][name] = {**options[0], **field}
    schema["dependentRequired"] = {"password": ["current_password"]}


class UserUpdate(BaseModel):
    """``PATCH /users/me``: the fields to change; a new password needs the current one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_update_schema)

    full_name: FullName | None = None
    password: Password | None = None
    current_password: str | None = Field(default=None, min_length=1, max_length=PASSWORD_MAX_LENGTH)

    @model_validator(mode="after")
    def _check_fields(self) -> Self:
        if any(getattr(self, name) is None for name in self.model_fields_set):
            raise ValueError("leave a field out instead of sending null")
        if self.password is not None and self.current_password is None:
            raise ValueError("changing the password needs current_password")
        return self


class UserOut(BaseModel):
    """A user as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    role: Literal["customer", "admin"]
    created_at: datetime
