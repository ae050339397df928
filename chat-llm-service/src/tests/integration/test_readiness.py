"""/ready tells the truth: 200 once the SDK client, the chat encoding and the catalog's read
model are ready and while the database answers, 503 once it is stopped; the read model is ready
once filled and once its consumer caught up with the broker (the fill waiting for the catalog:
``test_catalog_fill.py``)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from alembic import command
from common_libs.testing import LlmServer, NatsServer, TestTokenIssuer, eventually, free_port
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.db_checks import check_ready_names_stopped_database
from common_libs.testing.findings import async_findings
from common_libs.testing.nats import start_nats
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import make_settings
from tests.integration.conftest import alembic_config, chat_settings, read_model_ready, running_app
from tests.support.servers import CatalogStub

CHECKS = {"database": "ok", "llm_client": "ok", "tokenizer": "ok", "catalog_read_model": "ok"}


async def background_start_done(app: FastAPI) -> None:
    """Wait for what the lifespan started in the background: the chat encoding, the SDK client,
    the read model's fill and catch-up."""
    await app.state.chat_encoding
    if app.state.llm._building is not None:  # None: no LLM configured, nothing to build
        await app.state.llm._building
    await eventually(lambda: read_model_ready(app), message="read model ready")


def _migrate(database_url: str) -> None:
    # Alembic's env runs an event loop of its own: not in the test's.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.upgrade, alembic_config(database_url), "head").result()


async def test_ready_tells_whether_the_database_answers(
    own_nats: NatsServer, catalog: CatalogStub
) -> None:
    def make_app(database_url: str) -> FastAPI:
        _migrate(database_url)
        return create_app(
            make_settings(
                database_url=database_url, catalog_url=catalog.base_url, nats_url=own_nats.url
            )
        )

    found = await async_findings(
        lambda: check_ready_names_stopped_database(
            make_app, started=background_start_done, checks=CHECKS
        )
    )

    assert found == []


async def test_ready_waits_for_the_consumer_to_catch_up_with_the_broker(
    fresh_database: str,
    fake_llm: LlmServer,
    catalog: CatalogStub,
    issuer: TestTokenIssuer,
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = chat_settings(fresh_database, fake_llm, catalog, nats_url=f"nats://127.0.0.1:{port}")

    async with running_app(settings, issuer) as application, asgi_client(application) as http:
        read_model = application.state.catalog_read_model
        await eventually(lambda: read_model.is_filled, message="read model filled")
        without_broker = await http.get("/ready")
        with start_nats(port=port, store_dir=tmp_path / "nats"):
            await eventually(lambda: _ready(http), within=20, message="ready with the broker")

    assert without_broker.status_code == 503
    assert without_broker.json()["checks"]["catalog_read_model"] == "failed (StartingUp)"


async def _ready(http: httpx.AsyncClient) -> bool:
    return (await http.get("/ready")).status_code == 200
