"""The events user-service publishes (API.md, "Events"): declared here, and only here.

Each is written in the transaction of the change it describes (``common_libs.events``' outbox)
and published to the ``USERS`` stream by the relay the lifespan starts. ``data`` carries ids and
the role, never an email or a name: other services learn of an account without its personal data.
``python -m app.events > asyncapi.json`` (``make asyncapi``) writes the AsyncAPI document.
"""

from __future__ import annotations

import uuid
from importlib.metadata import version
from typing import Literal

from common_libs.events import USERS, DeletedData, EventSource
from common_libs.events.asyncapi import asyncapi_json
from pydantic import BaseModel

from app.config import SERVICE_NAME

__all__ = ["EVENTS", "USER_DELETED", "USER_REGISTERED", "UserEventData", "asyncapi"]


class UserEventData(BaseModel):
    """A user in an event: ``{id, role}``, without personal data."""

    id: uuid.UUID
    role: Literal["customer", "admin"]


EVENTS = EventSource(SERVICE_NAME, USERS)
USER_REGISTERED = EVENTS.event(
    "users.user.registered",
    UserEventData,
    "An account was created: a customer registered, or the configured admin was bootstrapped.",
)
USER_DELETED = EVENTS.event(
    "users.user.deleted",
    DeletedData,
    "An account was deleted (its owner deleted it); consumers erase what they keep about it.",
)


def asyncapi() -> str:
    """The service's AsyncAPI document, as ``asyncapi.json`` holds it."""
    return asyncapi_json(
        EVENTS,
        title=f"{SERVICE_NAME} events",
        version=version(SERVICE_NAME),
        description="Accounts created and deleted, published to the USERS stream of NATS "
        "JetStream from a transactional outbox. `subject` is the user's id; `data` is `{id, role}` "
        "(`{id}` for users.user.deleted), never an email or a name; `version` increases strictly "
        "per user.",
    )


if __name__ == "__main__":  # pragma: no cover - ``make asyncapi``
    print(asyncapi(), end="")
