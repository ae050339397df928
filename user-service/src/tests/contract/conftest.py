"""Provider side of the consumer-driven contracts: this service as its consumers meet it.

user-service runs as a real uvicorn process on its own migrated database, with the provider-state
endpoint switched on (``USERS_PROVIDER_STATES_ENABLED``). Service clients are configuration, so
the clients the consumers' pacts expect (the parameters of their ``a service client is
registered`` states) are registered the way an operator would: their Argon2id hashes in
``USERS_SERVICE_CLIENTS`` when the process starts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from common_libs.testing import PostgresServer, ServerProcess, create_database, free_port, pact
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.security.hash_secret import hash_secret
from app.security.signing_keys import private_key_pem
from tests.conftest import FAST_ARGON2, NO_BROKER_URL, SERVICE_ROOT, make_settings
from tests.integration.conftest import alembic_config

PROVIDER = "user-service"
PACTS_DIR = SERVICE_ROOT / "tests" / "contract" / "pacts"
CLIENT_STATE = "a service client is registered"


def consumer_pacts() -> list[Path]:
    """The pact files of this provider's consumers (their published contracts, copied here)."""
    return pact.consumer_pacts(PACTS_DIR, provider=PROVIDER)


def service_clients_in(pacts: list[Path]) -> dict[str, str]:
    """``{client_id: client_secret}`` of every service client the pacts expect registered."""
    clients: dict[str, str] = {}
    for pact_file in pacts:
        for interaction in json.loads(pact_file.read_text())["interactions"]:
            for state in interaction.get("providerStates", []):
                if state["name"] == CLIENT_STATE:
                    clients[state["params"]["client_id"]] = state["params"]["client_secret"]
    return clients


@pytest.fixture(scope="session")
def pact_database_url(postgres_server: PostgresServer) -> str:
    """A fresh database for the verification, migrated to the newest revision."""
    url = create_database(postgres_server, "user_service_pact_test")
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture(scope="session")
def provider(
    pact_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[pact.RunningProvider]:
    """user-service as a uvicorn process, with the consumers' service clients registered."""
    settings = make_settings()
    clients = {
        client_id: hash_secret(secret, settings)
        for client_id, secret in service_clients_in(consumer_pacts()).items()
    }
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    env = {
        "USERS_ENVIRONMENT": "test",
        "USERS_LOG_JSON": "false",
        "USERS_LOG_LEVEL": "WARNING",
        "USERS_DATABASE_URL": pact_database_url,
        "NATS_URL": NO_BROKER_URL,
        "USERS_SIGNING_KEY_PEM": private_key_pem(Ed25519PrivateKey.generate()).decode(),
        "USERS_SERVICE_CLIENTS": json.dumps(clients),
        "USERS_PROVIDER_STATES_ENABLED": "true",
        **{f"USERS_{name.upper()}": str(value) for name, value in FAST_ARGON2.items()},
    }
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("pact-provider") / "service.log"
    with ServerProcess(
        argv, env=env, cwd=SERVICE_ROOT, log_path=log_path, ready_url=base + "/ready"
    ):
        yield pact.RunningProvider(name=PROVIDER, url=base)
