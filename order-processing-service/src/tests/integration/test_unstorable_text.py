"""Text PostgreSQL cannot store (U+0000) or UTF-8 cannot encode (an unpaired surrogate) is a 422
validation problem, never a 500 with a traceback in the log."""

from __future__ import annotations

import json
import logging
import uuid

import httpx
import pytest
from common_libs.testing.input_checks import assert_unstorable_text_refused

from tests.support.orders import ADDRESS, Caller, order_body


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> bool:
    return all(record.exc_info is None for record in caplog.records)


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize("field", ["name", "line1", "line2", "city", "postal_code", "country"])
async def test_unstorable_text_in_the_shipping_address_is_a_422(
    client: httpx.AsyncClient,
    customer: Caller,
    caplog: pytest.LogCaptureFixture,
    field: str,
    bad: str,
) -> None:
    body = order_body((uuid.uuid4(), 1))
    body["shipping_address"] = {**ADDRESS, field: bad}
    headers = {
        **customer.headers,
        "Idempotency-Key": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }

    with caplog.at_level(logging.INFO):
        # json.dumps writes "\u0000" and "\ud800" as the escapes a client sends.
        response = await client.post("/orders", content=json.dumps(body), headers=headers)

    assert_unstorable_text_refused(response, what=f"shipping address {field}")
    assert response.json()["errors"][0]["loc"] == ["body", "shipping_address", field]
    assert no_tracebacks(caplog)


async def test_a_nul_in_the_idempotency_key_is_a_422(
    client: httpx.AsyncClient, customer: Caller
) -> None:
    headers = [*customer.headers.items(), ("Idempotency-Key", "key\x00one")]
    body = json.dumps(order_body((uuid.uuid4(), 1)))

    response = await client.post(
        "/orders", content=body, headers=[*headers, ("Content-Type", "application/json")]
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_nul_in_the_status_filter_and_order_path_is_a_422(
    client: httpx.AsyncClient, customer: Caller
) -> None:
    listing = await client.get(
        "/orders", params={"status": "shipped\x00"}, headers=customer.headers
    )
    reading = await client.get("/orders/a%00b", headers=customer.headers)

    assert_unstorable_text_refused(listing, what="status filter")
    assert_unstorable_text_refused(reading, what="order id")
