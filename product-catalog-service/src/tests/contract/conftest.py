"""Provider side of the consumer-driven contracts: this service as its consumers meet it.

The service runs as a real uvicorn process on its own migrated database, with the provider-state
endpoint switched on (``CATALOG_PROVIDER_STATES_ENABLED``) so that the pact verifier can set up
each interaction's state through the service's own managers. It trusts a test token issuer whose
public key it fetches from a stub JWKS endpoint, as it would from user-service.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from alembic import command
from common_libs.testing import (
    NatsServer,
    PostgresServer,
    ServerProcess,
    TestTokenIssuer,
    create_database,
    free_port,
)
from common_libs.testing.pact import RunningProvider

from tests.integration.conftest import SERVICE_ROOT, alembic_config
from tests.support.products import serve_jwks


@pytest.fixture(scope="session")
def pact_database_url(postgres_server: PostgresServer) -> str:
    """A fresh database for the verification, migrated to the newest revision."""
    url = create_database(postgres_server, "catalog_pact_test")
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture(scope="session")
def provider(
    pact_database_url: str, nats_server: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningProvider]:
    """The catalog as a uvicorn process, configured through its environment only."""
    issuer = TestTokenIssuer()
    # What the consumer's token stands for in its pact: a service token the catalog accepts.
    token = issuer.token(role="service", subject="order-processing-service", ttl_seconds=3600)
    with serve_jwks(issuer.jwks()) as jwks_url:
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        env = {
            "CATALOG_ENVIRONMENT": "test",
            "CATALOG_DATABASE_URL": pact_database_url,
            "NATS_URL": nats_server.url,
            "CATALOG_JWKS_URL": jwks_url,
            "CATALOG_LOG_LEVEL": "WARNING",
            "CATALOG_LOG_JSON": "false",
            "CATALOG_PROVIDER_STATES_ENABLED": "true",
        }
        base = f"http://127.0.0.1:{port}"
        log_path = tmp_path_factory.mktemp("pact-provider") / "service.log"
        with ServerProcess(
            argv, env=env, cwd=SERVICE_ROOT, log_path=log_path, ready_url=base + "/ready"
        ):
            yield RunningProvider(
                name="product-catalog-service",
                url=base,
                headers={"Authorization": f"Bearer {token}"},
            )
