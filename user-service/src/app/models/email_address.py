"""Email addresses: what the service accepts, and the form it compares them in."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field

EMAIL_MAX_LENGTH = 254


def _valid_email(value: str) -> str:
    # No deliverability check (no DNS); `.test` is accepted for development and test fixtures.
    # Other reserved names (localhost, .local, .invalid, .onion, .arpa) are refused.
    try:
        result = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    email = unicodedata.normalize("NFC", result.normalized)
    # Both forms go to 254-character columns, and lower-casing can lengthen a string ("İ").
    if max(len(email), len(normalize_email(email))) > EMAIL_MAX_LENGTH:
        raise ValueError(f"the email address is longer than {EMAIL_MAX_LENGTH} characters")
    return email


EmailAddress = Annotated[
    str,
    Field(
        max_length=EMAIL_MAX_LENGTH,
        json_schema_extra={"format": "email"},
        examples=["ada@example.com"],
        description="An email address; reserved names other than `.test` (such as "
        "`localhost`, `.local` or `.invalid`) are refused.",
    ),
    AfterValidator(_valid_email),
]


def normalize_email(email: str) -> str:
    """The form emails are compared in: Unicode NFC, trimmed, lower case."""
    return unicodedata.normalize("NFC", email).strip().lower()
