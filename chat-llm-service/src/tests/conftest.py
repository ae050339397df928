"""Fixtures shared by every suite: settings, the offline encodings, and the session's test
servers (the OpenAI-compatible test server, the stub catalog, orders service and JWKS) with the
token issuer the JWKS stub serves."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator

import pytest
from common_libs.testing import LlmServer, TestTokenIssuer, UvicornServer
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from app.utils.token_counter import prepare_encodings
from tests.support.servers import SERVICE_ROOT, CatalogStub, OrdersStub

# Nothing listens there: an app whose test gives it no broker never reaches a developer's local
# one (its consumer keeps retrying in the background until the app stops).
NO_BROKER = "nats://127.0.0.1:1"


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: plain log lines, never the developer's environment."""
    values: dict[str, object] = {
        "environment": "test",
        "log_json": False,
        "nats_url": NO_BROKER,
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture(scope="session", autouse=True)
def tiktoken_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A cache directory of the session's own, filled with the verified encodings.

    Tests call tiktoken directly to check the service's counts; this makes that work offline.
    """
    directory = str(tmp_path_factory.mktemp("tiktoken-cache"))
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = directory
    prepare_encodings()
    yield directory
    if previous is None:
        os.environ.pop("TIKTOKEN_CACHE_DIR", None)
    else:
        os.environ["TIKTOKEN_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def issuer() -> TestTokenIssuer:
    """Stands in for user-service: signs real access tokens."""
    return TestTokenIssuer()


@pytest.fixture(scope="session")
def fake_llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmServer]:
    """The OpenAI-compatible test server, one process for the session."""
    with LlmServer(log_path=tmp_path_factory.mktemp("fake-llm") / "server.log") as server:
        yield server


@pytest.fixture(scope="session")
def catalog_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogStub]:
    """The stub catalog, one process for the session."""
    log = tmp_path_factory.mktemp("catalog") / "server.log"
    with UvicornServer("tests.support.catalog_stub:app", cwd=SERVICE_ROOT, log_path=log) as server:
        yield CatalogStub(server.url)


@pytest.fixture(scope="session")
def orders_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrdersStub]:
    """The stub orders service, one process for the session."""
    log = tmp_path_factory.mktemp("orders") / "server.log"
    with UvicornServer("tests.support.orders_stub:app", cwd=SERVICE_ROOT, log_path=log) as server:
        yield OrdersStub(server.url)


@pytest.fixture(scope="session")
def jwks_url(tmp_path_factory: pytest.TempPathFactory, issuer: TestTokenIssuer) -> Iterator[str]:
    """user-service's JWKS endpoint, served by a stub with the test issuer's key."""
    log = tmp_path_factory.mktemp("issuer") / "server.log"
    env = {"STUB_JWKS": json.dumps(issuer.jwks())}
    app = "tests.support.issuer_stub:app"
    jwks = "/auth/jwks"
    with UvicornServer(app, cwd=SERVICE_ROOT, env=env, log_path=log, ready_path=jwks) as stub:
        yield stub.url + jwks


@pytest.fixture
def offline_app() -> FastAPI:
    """An app whose lifespan has not run (``offline_client`` calls it)."""
    return create_app(make_settings())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report how many requests schemathesis generated (for the closing note)."""
    module = sys.modules.get("tests.integration.test_schemathesis")
    if module is not None:
        count = module.CASES["count"]
        terminalreporter.write_line(f"schemathesis: {count} generated cases")
