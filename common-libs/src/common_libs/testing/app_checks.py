"""Checks every service runs on its own app, with its own facts: the fleet's conventions.

A service's ``tests/unit/test_app.py`` binds them as one parametrised test (its suite defines the
``offline_app`` fixture)::

    from app import main

    test_app_keeps_fleet_convention = fleet_app_test(
        main, service="user-service", failing_start_step="bootstrap_admin"
    )
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from common_libs import http_client
from common_libs.testing.input_checks import unstorable_text_is_refused_everywhere
from common_libs.testing.problem_checks import check_problem_types_documented, problem_type_hooks
from common_libs.testing.processes import UvicornServer

__all__ = [
    "APP_CONVENTIONS",
    "AppCheck",
    "StartFailed",
    "asgi_client",
    "check_failed_start_releases_resources",
    "check_process_serves_health_and_ready",
    "errors_are_documented_as_problem_json",
    "fleet_app_test",
    "health_names_service_and_version",
    "metrics_are_prometheus_text",
    "problem_types_are_documented",
    "unknown_path_answers_problem_json_with_request_id",
]

AppCheck = Callable[[httpx.AsyncClient, str], Awaitable[None]]
"""A check of an app (through a client bound to it) that knows the service's distribution name."""


class StartFailed(Exception):
    """The failure :func:`check_failed_start_releases_resources` plants in a lifespan step."""


@asynccontextmanager
async def asgi_client(
    app: FastAPI, *, base_url: str = "http://test", raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that calls ``app`` in process; runs no lifespan (that is the caller's).
    Each problem+json answer is checked against ``app``'s document (``problem_type_hooks``): a
    blank type, or one its operation does not list for that status, raises ``AssertionError``.
    ``raise_app_exceptions=False`` lets an unhandled error answer ``500`` instead of raising."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(
        transport=transport, base_url=base_url, event_hooks=problem_type_hooks(app)
    ) as client:
        yield client


async def health_names_service_and_version(client: httpx.AsyncClient, service: str) -> None:
    """``GET /health`` answers 200 with the service's name and installed version."""
    response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": service, "version": version(service)}


async def unknown_path_answers_problem_json_with_request_id(
    client: httpx.AsyncClient, service: str
) -> None:
    """An unknown path is a 404 ``application/problem+json`` carrying the caller's request id."""
    response = await client.get("/no-such-path", headers={"X-Request-ID": "abc-123"})

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:fleet:common:not-found"
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"


async def metrics_are_prometheus_text(client: httpx.AsyncClient, service: str) -> None:
    """``GET /metrics`` is Prometheus text that counts requests by route template."""
    await client.get("/health")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'http_request_duration_seconds_count{method="GET",route="/health"' in response.text


async def errors_are_documented_as_problem_json(client: httpx.AsyncClient, service: str) -> None:
    """The OpenAPI document names ``application/problem+json`` for every 4xx and 5xx answer."""
    schema = (await client.get("/openapi.json")).json()

    errors = [
        answer
        for path_item in schema["paths"].values()
        for operation in path_item.values()
        for code, answer in operation["responses"].items()
        if int(code) >= 400
    ]

    assert errors, "no error answer is documented"
    assert all(
        list(answer.get("content", {})) == ["application/problem+json"] for answer in errors
    ), "an error answer is documented as something else than application/problem+json"
    assert "HTTPValidationError" not in schema.get("components", {}).get("schemas", {})


async def problem_types_are_documented(client: httpx.AsyncClient, service: str) -> None:
    """Every documented error response lists the problem types of the catalogue it may carry,
    and every catalogue type is answered somewhere
    (:func:`~common_libs.testing.problem_checks.check_problem_types_documented`)."""
    check_problem_types_documented((await client.get("/openapi.json")).json())


APP_CONVENTIONS: tuple[AppCheck, ...] = (
    health_names_service_and_version,
    unknown_path_answers_problem_json_with_request_id,
    metrics_are_prometheus_text,
    errors_are_documented_as_problem_json,
    problem_types_are_documented,
    unstorable_text_is_refused_everywhere,
)
"""The conventions every service's app keeps without a database."""


_IN_CHECKED_START: ContextVar[bool] = ContextVar("in_checked_start", default=False)


@contextmanager
def _tasks_created_here() -> Iterator[list[asyncio.Task[Any]]]:
    """The tasks created from here until the block ends, by this task or by the tasks it starts
    (they inherit its context), and not those of another app running in the same event loop."""
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    created: list[asyncio.Task[Any]] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> asyncio.Future[Any]:
        if previous is not None:
            task = previous(loop, coro, **options)
        else:
            task = asyncio.Task(coro, loop=loop, **options)
        if _IN_CHECKED_START.get():
            created.append(task)  # type: ignore[arg-type]
        return task

    loop.set_task_factory(factory)
    marker = _IN_CHECKED_START.set(True)
    try:
        yield created
    finally:
        _IN_CHECKED_START.reset(marker)
        loop.set_task_factory(previous)


async def check_failed_start_releases_resources(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch, *, module: ModuleType, failing_step: str
) -> None:
    """A lifespan whose ``module.failing_step`` raises closes all it opened before, and re-raises.

    Checked: every client made through ``create_http_client`` (common-libs' own, as the token
    verifier's, or ``module``'s name for it) is closed, the engine in ``app.state.engine`` (when
    the lifespan got that far) was disposed, and no task the start created is still running.
    Pick a step late in the start, after the resources.
    """
    clients: list[httpx.AsyncClient] = []
    pools: list[Any] = []
    make_client = http_client.create_http_client

    def recording_client(*args: Any, **kwargs: Any) -> httpx.AsyncClient:
        client = make_client(*args, **kwargs)
        clients.append(client)
        return client

    # Where common-libs makes clients (the token verifier's JWKS client) and where the service's
    # own module does, if it imported the factory.
    monkeypatch.setattr(http_client, "create_http_client", recording_client)
    if hasattr(module, "create_http_client"):
        monkeypatch.setattr(module, "create_http_client", recording_client)

    def fail(*args: Any, **kwargs: Any) -> None:
        engine = getattr(app.state, "engine", None)
        if engine is not None:
            pools.append(engine.sync_engine.pool)
        raise StartFailed(failing_step)

    monkeypatch.setattr(module, failing_step, fail)

    with _tasks_created_here() as created, pytest.raises(StartFailed):
        async with app.router.lifespan_context(app):
            pass  # pragma: no cover - the start fails before the app would serve

    started = [task for task in created if not task.done()]
    if started:
        # A background job cancelled mid-query leaves the shielded close of its connection
        # (SQLAlchemy's) to end right after; a task still running a few seconds later is a leak.
        await asyncio.wait(started, timeout=2)
    left_running = [task for task in started if not task.done()]
    assert left_running == [], "tasks left running by the failed start"
    assert [client for client in clients if not client.is_closed] == [], "clients left open"
    # dispose() replaces the pool it closed with a fresh, empty one.
    assert all(app.state.engine.sync_engine.pool is not pool for pool in pools), (
        "engine not disposed"
    )


def check_process_serves_health_and_ready(
    *,
    service: str,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    app: str = "app.main:create_app",
) -> None:
    """The service as a uvicorn process configured by ``env`` alone serves ``/health`` and
    ``/ready``, echoes the caller's request id and writes it into its JSON log lines."""
    with UvicornServer(
        app, factory=True, env=env, cwd=cwd, log_path=log_path, log_level=None
    ) as server:
        health = httpx.get(server.url + "/health", headers={"X-Request-ID": "proc-check-1"})
        ready = httpx.get(server.url + "/ready")
    # Read once the process has stopped: its last lines are written by then.
    output = server.output()

    assert health.json()["version"] == version(service)
    assert health.headers["x-request-id"] == "proc-check-1"
    assert ready.status_code == 200, ready.text
    assert '"request_id": "proc-check-1"' in output


def fleet_app_test(
    main: ModuleType,
    *,
    service: str,
    failing_start_step: str,
    absent_routes: Sequence[tuple[str, str]] = (),
) -> Callable[..., Awaitable[None]]:
    """The fleet's app checks as one test parametrised by check, for a service's suite.

    ``main`` is the module with the app's lifespan, ``failing_start_step`` a name it calls late
    in the start (see :func:`check_failed_start_releases_resources`), ``absent_routes`` the
    ``(method, path)`` pairs that must answer 404 with the default settings.
    """
    conventions = {check.__name__: check for check in APP_CONVENTIONS}
    cases = [*conventions, "failed_start_releases_resources"]
    cases += [f"absent: {method} {path}" for method, path in absent_routes]
    routes = dict(zip(cases[len(conventions) + 1 :], absent_routes, strict=True))

    @pytest.mark.parametrize("case", cases)
    async def test_app_keeps_fleet_convention(
        case: str, offline_app: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        if case in routes:
            method, path = routes[case]
            async with asgi_client(offline_app) as client:
                assert (await client.request(method, path, json={})).status_code == 404
        elif case in conventions:
            async with asgi_client(offline_app) as client:
                await conventions[case](client, service)
        else:
            await check_failed_start_releases_resources(
                offline_app, monkeypatch, module=main, failing_step=failing_start_step
            )

    return test_app_keeps_fleet_convention
