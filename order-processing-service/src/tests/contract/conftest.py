"""Both sides of this service's consumer-driven contracts.

Consumer side: the pacts this service publishes, its contracts with the catalog and with
user-service. Each of those test modules holds one ``CONTRACT``; common-libs'
``published_contract`` fixture writes it to ``pacts/`` once all of the module's tests have passed
(a failing or partial run leaves the published file as it was).

Provider side: its consumers' pacts (``tests/contract/pacts/``, copies of their published
contracts) verified against this service as a uvicorn process on its own migrated database, with
the provider-state endpoint switched on (``ORDERS_PROVIDER_STATES_ENABLED``). The service trusts
a test token issuer whose public key it fetches from a stub JWKS endpoint, as it would from
user-service. Orders are the caller's own, so the verifier sends a customer's token: the token
of the customer the pacts' ``a customer has an order`` states give orders to (their
``user_id``), read from the pacts as an operator would read who the tests act as.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from common_libs.testing import (
    PostgresServer,
    ServerProcess,
    TestTokenIssuer,
    UvicornThread,
    free_port,
    start_nats,
)
from common_libs.testing.db_checks import create_migrated_database
from common_libs.testing.pact import RunningProvider, published_contract
from common_libs.testing.pact import consumer_pacts as pacts_in

from tests.integration.conftest import SERVICE_ROOT
from tests.support.users_stub import UsersStub

__all__ = ["PACTS_DIR", "PROVIDER", "consumer_pacts", "published_contract"]

PROVIDER = "order-processing-service"
PACTS_DIR = SERVICE_ROOT / "tests" / "contract" / "pacts"
CUSTOMER_STATE = "a customer has an order"
# Nothing listens there: the provider under verification calls no other service.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture(scope="session")
def pacts_dir() -> Path:
    """This repository's published pacts, which the providers verify."""
    return Path(__file__).resolve().parents[2] / "pacts"


def consumer_pacts() -> list[Path]:
    """The pact files of this provider's consumers (their published contracts, copied here)."""
    return pacts_in(PACTS_DIR, provider=PROVIDER)


def pact_customers(pacts: list[Path]) -> set[str]:
    """The ``user_id`` of every ``a customer has an order`` state the pacts name."""
    customers: set[str] = set()
    for pact_file in pacts:
        for interaction in json.loads(pact_file.read_text())["interactions"]:
            for state in interaction.get("providerStates", []):
                if state["name"] == CUSTOMER_STATE:
                    customers.add(state["params"]["user_id"])
    return customers


@pytest.fixture(scope="session")
def token_issuer() -> TestTokenIssuer:
    """Signs the tokens the service under verification accepts."""
    return TestTokenIssuer()


@pytest.fixture(scope="session")
def pact_customer() -> str:
    """The customer the verification acts as: the one the pacts' states give orders to."""
    customers = pact_customers(consumer_pacts())
    # The verifier sends one token for every interaction: the pacts must agree on its customer.
    assert len(customers) <= 1, f"the pacts name several customers: {sorted(customers)}"
    return customers.pop() if customers else str(uuid.uuid4())


@pytest.fixture(scope="session")
def provider(
    postgres_server: PostgresServer,
    token_issuer: TestTokenIssuer,
    pact_customer: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningProvider]:
    """The service as a uvicorn process, configured through its environment only."""
    database_url = create_migrated_database(
        postgres_server, "order_service_pact_test", alembic_ini=SERVICE_ROOT / "alembic.ini"
    )
    token = token_issuer.token(role="customer", subject=pact_customer, ttl_seconds=3600)
    # Only its JWKS is asked for.
    users = UsersStub(token_issuer, client_id="unused", client_secret="unused")
    # A broker of its own: the erasure consumer's durable consumer is one per broker, and the
    # session's broker belongs to the integration tests' app, whose users.user.deleted events
    # this process would otherwise take half of.
    with UvicornThread(users.app) as jwks, start_nats(prefer_docker=False) as broker:
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        env = {
            "ORDERS_ENVIRONMENT": "test",
            "ORDERS_DATABASE_URL": database_url,
            "NATS_URL": broker.url,
            "ORDERS_JWKS_URL": jwks.url + "/auth/jwks",
            "ORDERS_CATALOG_URL": NOWHERE,
            "ORDERS_USERS_URL": NOWHERE,
            "ORDERS_LOG_LEVEL": "WARNING",
            "ORDERS_LOG_JSON": "false",
            "ORDERS_PROVIDER_STATES_ENABLED": "true",
        }
        base = f"http://127.0.0.1:{port}"
        log_path = tmp_path_factory.mktemp("pact-provider") / "service.log"
        with ServerProcess(
            argv, env=env, cwd=SERVICE_ROOT, log_path=log_path, ready_url=base + "/ready"
        ):
            yield RunningProvider(
                name=PROVIDER, url=base, headers={"Authorization": f"Bearer {token}"}
            )
