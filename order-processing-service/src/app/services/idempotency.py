"""Idempotency-Key rules: what counts as "the same request", and how a claimed key answers.

A key belongs to one user; its claim stores the hash of the validated request, the order it
created, and, once the attempt is final, the answer. For a key already claimed:

- a different request hash: ``422``;
- a stored answer: that answer again (``201`` with the same order, or the same refusal);
- no stored answer yet: the order is still ``pending`` (its request is in flight, or it crashed
  and waits for the reconciler, which stores the answer when it settles the order): ``409``.

An attempt abandoned because the catalog was unavailable (``503``) drops its claim: the retry
that ``Retry-After`` invites starts afresh. Keys live ``ORDERS_IDEMPOTENCY_TTL_HOURS`` (>= 24).
"""

from __future__ import annotations

import hashlib
import json

from app.db.idempotency_repository import KeyRecord
from app.models.order_models import OrderCreate, OrderOut
from app.services.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, problem_from_stored

__all__ = ["replay", "request_hash"]


def request_hash(*, request: OrderCreate) -> str:
    """SHA-256 of the validated body in canonical JSON (key order and spacing do not matter)."""
    canonical = json.dumps(
        request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def replay(*, record: KeyRecord, hashed_request: str) -> OrderOut:
    """Answer a request whose key is already claimed: the stored order, or raise."""
    if record.request_hash != hashed_request:
        raise IdempotencyKeyReused()
    if record.response_status is None or record.response_body is None:
        raise IdempotencyKeyInFlight()
    if record.response_status == 201:
        return OrderOut.model_validate(record.response_body)
    raise problem_from_stored(record.response_body)
