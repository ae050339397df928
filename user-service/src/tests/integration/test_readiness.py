"""/ready tells the truth about the database: 200 while it answers, 503 once it is stopped."""

from __future__ import annotations

import httpx
from common_libs.testing.db_checks import check_ready_answers, check_ready_names_stopped_database
from common_libs.testing.findings import async_findings

from app.main import create_app
from tests.conftest import make_settings


async def test_ready_answers_200_when_database_answers(client: httpx.AsyncClient) -> None:
    found = await async_findings(lambda: check_ready_answers(client, checks={"database": "ok"}))

    assert found == []


async def test_ready_answers_503_once_database_is_stopped() -> None:
    found = await async_findings(
        lambda: check_ready_names_stopped_database(
            lambda url: create_app(make_settings(database_url=url))
        )
    )

    assert found == []
