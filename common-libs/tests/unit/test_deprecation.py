"""A route being retired: Deprecation, Sunset and Link headers, and deprecated in OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from common_libs.deprecation import Deprecation, deprecated, document_deprecations
from common_libs.errors import NotFound
from common_libs.problems import install_problem_handlers

SINCE = datetime(2027, 1, 1, tzinfo=UTC)  # 1798761600
SUNSET = datetime(2027, 7, 1, 12, 30, tzinfo=UTC)
LINK = "https://docs.example.test/migrate-orders"
RETIRED = deprecated(since=SINCE, sunset=SUNSET, link=LINK)


async def legacy_caller(_: Annotated[None, RETIRED]) -> str:
    """A dependency of the routes that serve legacy callers, retired with them."""
    return "legacy"


def build_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    document_deprecations(app)
    router = APIRouter(prefix="/orders")

    @router.get("/{order_id}/legacy", dependencies=[RETIRED])
    async def get_legacy_order(order_id: int) -> dict[str, int]:
        if order_id == 0:
            raise NotFound("No such order.")
        return {"id": order_id}

    @router.post("/legacy", status_code=201)
    async def place_legacy_order(
        _: Annotated[None, deprecated(since=SINCE)],
    ) -> dict[str, str]:
        return {"status": "confirmed"}

    @router.get("/{order_id}")
    async def get_order(order_id: int) -> dict[str, int]:
        return {"id": order_id}

    @router.get("/legacy/summary", include_in_schema=False)
    async def legacy_summary(caller: Annotated[str, Depends(legacy_caller)]) -> dict[str, str]:
        return {"caller": caller}

    @router.get("/legacy/count")
    async def count_legacy_orders(caller: Annotated[str, Depends(legacy_caller)]) -> int:
        return 0

    app.include_router(router)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_a_retired_routes_answer_carries_deprecation_sunset_and_link(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/orders/7/legacy")

    assert response.status_code == 200
    assert response.headers["Deprecation"] == "@1798761600"
    assert response.headers["Sunset"] == "Thu, 01 Jul 2027 12:30:00 GMT"
    assert response.headers["Link"] == f'<{LINK}>; rel="deprecation"; type="text/html"'


async def test_a_deprecation_without_sunset_or_link_sends_only_deprecation(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/orders/legacy")

    assert response.status_code == 201
    assert response.headers["Deprecation"] == "@1798761600"
    assert "Sunset" not in response.headers
    assert "Link" not in response.headers


async def test_other_routes_carry_no_deprecation(client: httpx.AsyncClient) -> None:
    response = await client.get("/orders/7")

    assert "Deprecation" not in response.headers


def test_the_document_marks_only_retired_operations_deprecated() -> None:
    app = build_app()
    paths = app.openapi()["paths"]

    assert app.openapi()["paths"] is paths  # built once

    assert paths["/orders/{order_id}/legacy"]["get"]["deprecated"] is True
    assert paths["/orders/legacy"]["post"]["deprecated"] is True
    assert paths["/orders/legacy/count"]["get"]["deprecated"] is True  # through a dependency
    assert "deprecated" not in paths["/orders/{order_id}"]["get"]
    assert "/orders/legacy/summary" not in paths


async def test_a_dependency_of_a_dependency_sends_the_headers_too(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/orders/legacy/summary")

    assert response.json() == {"caller": "legacy"}
    assert response.headers["Deprecation"] == "@1798761600"


def test_the_document_names_the_headers_on_successful_answers_only() -> None:
    operation = build_app().openapi()["paths"]["/orders/{order_id}/legacy"]["get"]

    assert set(operation["responses"]["200"]["headers"]) == {"Deprecation", "Sunset", "Link"}
    assert "headers" not in operation["responses"]["422"]


def test_a_sunset_is_an_http_date_in_gmt_whatever_the_zone_given() -> None:
    paris = timezone(timedelta(hours=2))
    deprecation = Deprecation(since=SINCE, sunset=datetime(2027, 7, 1, 14, 30, tzinfo=paris))

    assert deprecation.headers()["Sunset"] == "Thu, 01 Jul 2027 12:30:00 GMT"


@pytest.mark.parametrize(
    ("since", "sunset", "link", "message"),
    [
        (datetime(2027, 1, 1), None, None, "time zone"),
        (SINCE, datetime(2026, 1, 1, tzinfo=UTC), None, "cannot come before"),
        (SINCE, None, "/docs/migrate", "absolute http"),
        (SINCE, None, "ftp://docs.example.test/x", "absolute http"),
        (SINCE, None, 'https://docs.example.test/a">b', "cannot hold"),
    ],
)
def test_a_deprecation_that_headers_could_not_say_is_refused(
    since: datetime, sunset: datetime | None, link: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Deprecation(since=since, sunset=sunset, link=link)
