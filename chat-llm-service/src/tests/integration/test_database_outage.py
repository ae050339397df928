"""A lost database answers 503 problem+json with Retry-After, never 500, and the service serves
again on its own once the database is back."""

from __future__ import annotations

import uuid

from common_libs.testing import LlmServer, NatsServer, TestTokenIssuer, eventually
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.db_checks import Call, check_lost_database_answers_503
from common_libs.testing.findings import async_findings

from tests.integration.conftest import chat_settings, read_model_ready, running_app
from tests.support.servers import CatalogStub


async def test_a_lost_database_answers_503_until_it_is_back(
    fresh_database: str,
    fake_llm: LlmServer,
    catalog: CatalogStub,
    nats_server: NatsServer,
    issuer: TestTokenIssuer,
    user: dict[str, str],
) -> None:
    calls: dict[str, Call] = {
        "conversations": lambda client: client.get("/chat/conversations", headers=user),
        "conversation": lambda client: client.get(
            f"/chat/conversations/{uuid.uuid4()}", headers=user
        ),
        "usage": lambda client: client.get("/chat/usage", headers=user),
        "generate": lambda client: client.post(
            "/chat/generate_response", json={"message": "Hello"}, headers=user
        ),
    }
    settings = chat_settings(fresh_database, fake_llm, catalog, nats_url=nats_server.url)

    async with running_app(settings, issuer) as application, asgi_client(application) as client:
        await eventually(lambda: read_model_ready(application), message="read model ready")
        found = await async_findings(
            lambda: check_lost_database_answers_503(client, fresh_database, calls)
        )

    assert found == []
