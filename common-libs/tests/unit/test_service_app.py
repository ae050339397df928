"""create_service_app: every service's app has logging, problems, request ids, metrics, health."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from common_libs.auth import TokenVerifier
from common_libs.deprecation import deprecated
from common_libs.errors import NotFound
from common_libs.problems import PROBLEM_CONTENT_TYPE, problem_responses
from common_libs.service_app import create_service_app, open_token_verifier, run_in_background

pytestmark = pytest.mark.usefixtures("restore_logging")


@dataclass(frozen=True)
class FakeSettings:
    log_level: str = "WARNING"
    log_json: bool = True
    jwks_url: str = "http://127.0.0.1:9/auth/jwks"
    jwt_issuer: str = "issuer"
    jwt_audience: str = "audience"
    http_timeout_seconds: float = 1.0
    deny_list_keep_seconds: float = 960.0


@asynccontextmanager
async def no_resources(app: FastAPI) -> AsyncIterator[None]:
    yield


async def database_down() -> None:
    raise ConnectionRefusedError("refused")


def build() -> FastAPI:
    app = create_service_app(
        name="shop-service",
        version="9.9.9",
        summary="A shop.",
        lifespan=no_resources,
        settings=FakeSettings(),
        ready_checks={"database": database_down},
    )

    @app.get("/things")
    async def things() -> list[str]:
        return []

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build())
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        yield client


async def test_health_names_the_service_and_its_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "check-1"})

    assert response.json() == {"status": "ok", "service": "shop-service", "version": "9.9.9"}
    assert response.headers["x-request-id"] == "check-1"


async def test_ready_runs_the_checks(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")

    assert response.status_code == 503
    assert "database" in response.json()["detail"]


async def test_errors_are_problems_and_requests_are_measured(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    wrong_method = await client.delete("/things")
    await client.get("/things")
    metrics = await client.get("/metrics")

    assert missing.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert wrong_method.headers["allow"] == "GET"
    assert 'route="/things"' in metrics.text


def test_settings_are_kept_on_the_app() -> None:
    app = build()

    assert app.state.settings == FakeSettings()
    assert (app.title, app.version, app.summary) == ("shop-service", "9.9.9", "A shop.")


def _tracked(thing: object) -> bool:
    """Whether the collector looks at ``thing`` (``gc.get_objects`` leaves frozen objects out)."""
    return any(candidate is thing for candidate in gc.get_objects())


async def test_what_start_made_is_frozen_while_the_app_serves_and_thawed_at_its_end() -> None:
    made_at_start: list[object] = []
    seen: dict[str, object] = {}

    @asynccontextmanager
    async def start_something(app: FastAPI) -> AsyncIterator[None]:
        made_at_start.append(object())
        seen["tracked at start"] = _tracked(made_at_start)
        yield

    app = create_service_app(
        name="shop-service",
        version="9.9.9",
        summary="A shop.",
        lifespan=start_something,
        settings=FakeSettings(),
        ready_checks={},
    )
    async with app.router.lifespan_context(app):
        made_while_serving: list[object] = []
        frozen = gc.get_freeze_count()
        serving = (_tracked(made_at_start), _tracked(made_while_serving))

    assert seen["tracked at start"] is True
    assert frozen > 0
    assert serving == (False, True)
    assert gc.get_freeze_count() == 0
    assert _tracked(made_at_start)


async def test_the_token_verifier_client_closes_with_the_stack() -> None:
    async with AsyncExitStack() as stack:
        verifier = open_token_verifier(stack, FakeSettings())
        # The JWKS client inside the key source: nothing else would tell that it was closed.
        client = verifier._keys._client  # type: ignore[attr-defined]
        assert isinstance(verifier, TokenVerifier)
        assert not client.is_closed
        assert verifier.deny_list is None  # no broker, no deny list

    assert client.is_closed


async def test_background_work_is_cancelled_and_awaited_when_the_stack_closes() -> None:
    started = asyncio.Event()
    stopped = asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    async with AsyncExitStack() as stack:
        task = run_in_background(stack, work(), name="background-work")
        await started.wait()
        assert task.get_name() == "background-work"

    assert task.cancelled()
    assert stopped.is_set()


async def test_background_work_that_lost_its_cancellation_is_cancelled_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("common_libs.service_app.STOP_GRACE_SECONDS", 0.05)
    waiting = asyncio.Event()
    passes = 0

    async def work() -> None:
        nonlocal passes
        while True:  # a loop that never asks whether it was cancelled
            passes += 1
            waiting.set()
            if passes == 1:
                # A wait that lost the cancellation that came with its answer (as Python 3.11's
                # asyncio.wait_for does)
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(3600)
            else:
                await asyncio.sleep(3600)

    async with asyncio.timeout(10), AsyncExitStack() as stack:
        task = run_in_background(stack, work(), name="deaf-work")
        await waiting.wait()

    assert task.cancelled()
    assert passes == 2
    assert "task deaf-work still running after its cancellation" in caplog.text


async def test_background_work_that_ended_is_left_as_it_ended() -> None:
    async def work() -> None:
        return None

    async with AsyncExitStack() as stack:
        task = run_in_background(stack, work(), name="short-work")
        await task

    assert task.done()
    assert not task.cancelled()


def test_the_document_declares_its_server_description_and_every_tag_it_uses() -> None:
    app = build()

    @app.get("/widgets", tags=["widgets", "things"])
    async def widgets() -> list[str]:
        return []

    @app.get("/gadgets", tags=["widgets"])
    async def gadgets() -> list[str]:
        return []

    document = app.openapi()

    assert document["servers"] == [{"url": "/"}]
    assert document["info"]["description"].startswith("A shop.\n\n")
    assert "/api/openapi.json" in document["info"]["description"]
    assert document["tags"] == [{"name": "widgets"}, {"name": "things"}]
    assert app.openapi() is document


def test_tags_the_app_declares_itself_keep_their_descriptions() -> None:
    app = build()
    app.openapi_tags = [{"name": "widgets", "description": "Small parts."}]

    @app.get("/widgets", tags=["widgets"])
    async def widgets() -> list[str]:
        return []

    assert app.openapi()["tags"] == [{"name": "widgets", "description": "Small parts."}]


def test_an_app_without_tags_declares_none() -> None:
    assert "tags" not in build().openapi()


class ThingNotFound(NotFound):
    """No such thing."""

    type = "urn:fleet:shop:thing-not-found"


def build_with_types() -> FastAPI:
    app = create_service_app(
        name="shop-service",
        version="9.9.9",
        summary="A shop.",
        lifespan=no_resources,
        settings=FakeSettings(),
        ready_checks={},
        problem_types=(ThingNotFound,),
    )

    @app.get("/things/{thing_id}", responses=problem_responses(404))
    async def get_thing_by_id(thing_id: int) -> None:
        return None

    @app.post("/things/_import", responses=problem_responses(503))
    async def _import_things() -> None:
        return None

    return app


def test_operation_ids_are_the_route_functions_in_lower_camel_case() -> None:
    paths = build_with_types().openapi()["paths"]

    assert paths["/things/{thing_id}"]["get"]["operationId"] == "getThingById"
    assert paths["/things/_import"]["post"]["operationId"] == "importThings"


def test_the_services_own_problem_types_join_the_catalogue() -> None:
    document = build_with_types().openapi()

    assert document["paths"]["/things/{thing_id}"]["get"]["responses"]["404"][
        "x-problem-types"
    ] == ["urn:fleet:common:not-found", "urn:fleet:shop:thing-not-found"]
    assert [entry["type"] for entry in document["x-problem-types"]] == [
        "urn:fleet:common:not-found",
        "urn:fleet:common:service-unavailable",
        "urn:fleet:common:validation-failed",
        "urn:fleet:shop:thing-not-found",
    ]


def test_a_deprecated_route_is_marked_in_the_services_document() -> None:
    app = build()

    @app.get("/old", dependencies=[deprecated(since=datetime(2027, 1, 1, tzinfo=UTC))])
    async def old() -> None:
        return None

    assert app.openapi()["paths"]["/old"]["get"]["deprecated"] is True
