"""A running fleet shared by the tests that drive it through the gateway.

The session fleet is started the way a developer would run ``make up`` with these variables
exported: an admin of their choosing, the OpenAI-compatible test server as the LLM, models that
are not the defaults, one OTEL_SERVICE_NAME for everything (so that the tests see each variable
arrive where it belongs, or, for that one, not: each service runs under its own name), and an
OTLP/HTTP receiver of the tests' own as where the spans go (every span: the default sampler).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from common_libs.testing import LlmServer
from common_libs.testing.otlp import OtlpReceiver

from tests.fleet import Fleet, running_fleet
from tests.support import chaos
from tests.support.shop import Account, Endpoints, Shop

ADMIN_EMAIL = "shop-admin@example.com"
ADMIN_PASSWORD = "e2e-admin-password-1"
CHAT_MODEL = "gpt-4o-mini-2024-07-18"
EMBEDDING_MODEL = "text-embedding-3-large"
LLM_API_KEY = "e2e-fake-llm-key"
CALLERS_SERVICE_NAME = "e2e-one-name-for-the-whole-fleet"


@pytest.fixture(scope="session")
def fake_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmServer]:
    """The OpenAI-compatible test server, on a free port of 127.0.0.1, answering only our key."""
    log_path = tmp_path_factory.mktemp("llm") / "llm-server.log"
    with LlmServer(log_path=log_path, api_key=LLM_API_KEY) as server:
        yield server


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    """Where the session fleet's services export their spans."""
    with OtlpReceiver() as receiver:
        yield receiver


def fleet_environment(llm: LlmServer, otlp: OtlpReceiver) -> dict[str, str]:
    """The variables exported before ``make up`` for the session fleet."""
    return {
        "FLEET_ADMIN_EMAIL": ADMIN_EMAIL,
        "FLEET_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "OPENAI_BASE_URL": llm.base_url,
        "OPENAI_API_KEY": LLM_API_KEY,
        "CHAT_MODEL": CHAT_MODEL,
        "EMBEDDING_MODEL": EMBEDDING_MODEL,
        "OTEL_SERVICE_NAME": CALLERS_SERVICE_NAME,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
        # Batches every 0.2 s rather than 5: a test waits for its spans that long at most.
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }


def replicated_fleet_environment(**extra: str) -> dict[str, str]:
    """``make up`` with FLEET_REPLICAS=2 and the session's admin, for the tests that load a fleet
    and kill its processes: the gateway's rate limit and the per-user order limit out of the way."""
    return {
        "FLEET_REPLICAS": "2",
        "FLEET_ADMIN_EMAIL": ADMIN_EMAIL,
        "FLEET_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GATEWAY_RATE_LIMIT": "100000r/s",
        "GATEWAY_RATE_BURST": "100000",
        "ORDERS_PLACE_ORDER_LIMIT": "100000",
        **extra,
    }


@pytest.fixture(scope="session")
def fleet(fake_llm: LlmServer, otlp: OtlpReceiver) -> Iterator[Fleet]:
    """The whole fleet, started once for the session and stopped (Ctrl-C) afterwards."""
    with running_fleet(fleet_environment(fake_llm, otlp)) as running:
        yield running


@pytest.fixture(scope="session")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as session_client:
        yield session_client


@pytest.fixture(scope="session")
def shop(fleet: Fleet, client: httpx.Client) -> Shop:
    """The public API of the session fleet, reached only through its gateway."""
    return Shop(Endpoints.through_gateway(fleet.gateway), client)


@pytest.fixture(scope="session")
def admin(shop: Shop) -> Account:
    """The admin that ``make up`` created from FLEET_ADMIN_EMAIL / FLEET_ADMIN_PASSWORD."""
    return shop.account(ADMIN_EMAIL, ADMIN_PASSWORD)


@dataclass(frozen=True)
class TracedOrder:
    request_id: str
    order: dict[str, Any]


@pytest.fixture(scope="session")
def first_order(shop: Shop, admin: Account) -> TracedOrder:
    """The session fleet's first order, placed under a known request id.

    The order service caches its service token, so a fleet's first order is sure to make it
    ask user-service for one (a later one does only when the token is due for renewal, some
    14.5 minutes on). Every test that places orders on the session fleet uses this
    fixture, so that this order is the first whatever the tests' order, and its request id
    reaches every service an order can touch.
    """
    product = shop.add_product(admin, stock=3)
    customer = shop.new_customer()
    request_id = "e2e-traced-first-order"
    response = shop.place_order(customer, (product["id"], 1), request_id=request_id)
    assert response.status_code == 201, response.text
    return TracedOrder(request_id=request_id, order=response.json())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The chaos suite's table (tests/test_chaos.py), when its faults ran."""
    if rows := chaos.table():
        terminalreporter.section("chaos: what the load saw of each fault")
        for row in rows:
            terminalreporter.write_line(row)
