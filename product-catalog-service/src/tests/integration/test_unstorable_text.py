"""Text PostgreSQL cannot store (U+0000) or UTF-8 cannot encode (an unpaired surrogate) is a 422
validation problem, never a 500 with a traceback in the log."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from common_libs.testing.input_checks import assert_unstorable_text_refused

from tests.support.products import product_payload

BAD_TEXT = pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"], ids=["nul", "lone-surrogate"])


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> bool:
    return all(record.exc_info is None for record in caplog.records)


@BAD_TEXT
@pytest.mark.parametrize("field", ["sku", "name", "description", "category", "currency"])
async def test_unstorable_text_in_a_product_body_is_a_422(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    field: str,
    bad: str,
) -> None:
    # json.dumps writes "\u0000" and "\ud800" as the escapes a client sends.
    body = json.dumps(product_payload(**{field: bad}))
    headers = {**admin_headers, "Content-Type": "application/json"}

    with caplog.at_level(logging.INFO):
        response = await client.post("/products", content=body, headers=headers)

    assert_unstorable_text_refused(response, what=f"product {field}")
    assert response.json()["errors"][0]["loc"] == ["body", field]
    assert no_tracebacks(caplog)


@pytest.mark.parametrize("name", ["q", "category", "cursor"])
async def test_a_nul_in_the_search_query_is_a_422(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    with caplog.at_level(logging.INFO):
        response = await client.get("/products", params={name: "shoe\x00"})

    assert_unstorable_text_refused(response, what=f"search {name}")
    assert response.json()["errors"][0]["loc"] == ["query", name]
    assert no_tracebacks(caplog)


async def test_a_nul_in_a_product_path_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/products/a%00b")

    assert_unstorable_text_refused(response, what="product id")
