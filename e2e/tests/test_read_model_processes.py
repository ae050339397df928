"""The assistant's read model of the catalog with the services as processes the test controls:
a chat service that starts after the products exist (and after the stream forgot them) fills its
read model from the catalog's API without missing a change, and it answers grounded turns while
the catalog is stopped."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import fleet as runner
import httpx
import nats
import pytest
from common_libs.testing import LlmServer, wait_until

from tests.conftest import LLM_API_KEY
from tests.support.assistant import ask, first_turn_where, made_up_word
from tests.support.processes import ADMIN_EMAIL, ADMIN_PASSWORD, Services, running_services
from tests.support.shop import Shop, bearer

PRODUCTS = 500


@pytest.fixture
def services(fake_llm: LlmServer) -> Iterator[Services]:
    """Everything but the chat service, which each test starts itself."""
    llm = {"OPENAI_BASE_URL": fake_llm.base_url, "OPENAI_API_KEY": LLM_API_KEY}
    with running_services(chat_env=llm, start_chat=False) as started:
        yield started


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as test_client:
        yield test_client


def _catalog_listing(shop: Shop) -> dict[str, tuple[str, Decimal]]:
    """Every product the catalog's public API lists: id -> (name, price)."""
    listed: dict[str, tuple[str, Decimal]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = shop.client.get(f"{shop.endpoints.catalog}/products", params=params).json()
        listed.update({p["id"]: (p["name"], Decimal(p["price"])) for p in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return listed


def _read_model(services: Services) -> dict[str, tuple[str, Decimal]]:
    rows = asyncio.run(
        services.fetch(runner.CHAT, "SELECT id::text, name, price FROM catalog_products")
    )
    return {row["id"]: (row["name"], Decimal(row["price"])) for row in rows}


def _outbox_rows(services: Services) -> int:
    rows = asyncio.run(services.fetch(runner.CATALOG, "SELECT count(*) AS n FROM outbox"))
    return int(rows[0]["n"])


async def _purge(nats_url: str, stream: str) -> int:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        await js.purge_stream(stream)
        return int((await js.stream_info(stream)).state.messages)
    finally:
        await client.close()


def test_a_chat_started_after_500_products_fills_its_read_model_and_misses_no_change(
    services: Services, client: httpx.Client
) -> None:
    shop = services.shop(client)
    admin = shop.account(ADMIN_EMAIL, ADMIN_PASSWORD)
    products = [shop.add_product(admin, stock=3, price=f"{i + 1}.00") for i in range(PRODUCTS)]
    # Once the catalog's relay has published them all, the stream forgets them (as it does
    # after 7 days): the API is the only place left to learn them from.
    wait_until(
        lambda: _outbox_rows(services) == 0, timeout=30, message="the catalog's outbox empty"
    )
    assert asyncio.run(_purge(services.nats_url, "CATALOG")) == 0

    # Prices keep changing while the chat service starts and fills its read model.
    stop = threading.Event()
    repriced: list[str] = []
    refused: list[str] = []

    def reprice() -> None:
        with httpx.Client(timeout=30) as own:
            for round_ in range(1, 1000):
                for product in products[:: PRODUCTS // 20]:
                    if stop.is_set():
                        return
                    answer = own.patch(
                        f"{shop.endpoints.catalog}/products/{product['id']}",
                        json={"price": f"{round_}.25"},
                        headers=bearer(admin.access_token),
                    )
                    if answer.status_code == 200:
                        repriced.append(product["id"])
                    else:
                        refused.append(answer.text)

    writer = threading.Thread(target=reprice)
    writer.start()
    try:
        services.chat.start()
    finally:
        stop.set()
        writer.join()
    assert repriced, "no price changed while the chat service started"
    assert not refused
    added = shop.add_product(admin, stock=1, name=f"{made_up_word().title()} lamp")

    expected = _catalog_listing(shop)
    assert added["id"] in expected
    assert len(expected) == PRODUCTS + 1
    wait_until(
        lambda: _read_model(services) == expected,
        timeout=10,
        message="the read model equal to the catalog",
    )
    assert "filled" in services.chat.log()


def test_with_the_catalog_stopped_the_assistant_still_answers_grounded_turns(
    services: Services, client: httpx.Client, fake_llm: LlmServer
) -> None:
    services.chat.start()
    shop = services.shop(client)
    admin = shop.account(ADMIN_EMAIL, ADMIN_PASSWORD)
    customer = shop.new_customer()
    word = made_up_word()
    product = shop.add_product(admin, stock=2, name=f"{word.title()} teapot", price="19.90")
    question = f"Have you got a {word} teapot?"
    first_turn_where(shop, fake_llm, customer, question, lambda p: product["name"] in p)

    services.catalog.stop()
    assert not services.catalog.is_running()

    turn = ask(shop, fake_llm, customer, question)
    assert product["name"] in turn.prompt
    assert "19.90 USD" in turn.prompt
    assert "cannot be searched" not in turn.prompt
