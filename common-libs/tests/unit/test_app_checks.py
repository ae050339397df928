"""The app checks services run on themselves, run on apps built the way services build theirs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import version
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, File, Form, Header, UploadFile
from pydantic import BaseModel

from common_libs.db import create_engine
from common_libs.http_client import create_http_client
from common_libs.problems import install_problem_handlers, problem_responses
from common_libs.service_app import create_service_app, open_token_verifier
from common_libs.testing.app_checks import (
    APP_CONVENTIONS,
    AppCheck,
    asgi_client,
    check_failed_start_releases_resources,
    errors_are_documented_as_problem_json,
    fleet_app_test,
    problem_types_are_documented,
)
from common_libs.testing.input_checks import unstorable_text_is_refused_everywhere

SERVICE = "common-libs"  # an installed distribution, so that its version can be read

pytestmark = pytest.mark.usefixtures("restore_logging")


@dataclass(frozen=True)
class QuietLogging:
    log_level: str = "WARNING"
    log_json: bool = True


@dataclass(frozen=True)
class TokenSettingsForTests:
    jwks_url: str = "http://127.0.0.1:9/auth/jwks"
    jwt_issuer: str = "issuer"
    jwt_audience: str = "audience"
    http_timeout_seconds: float = 1.0


def conventional_app() -> FastAPI:
    """An app wired as every service wires its own, with the lifespan of ``lifespan_module``."""
    app = create_service_app(
        name=SERVICE,
        version=version(SERVICE),
        summary="The checks' subject.",
        lifespan=CAREFUL.lifespan,
        settings=QuietLogging(),
        ready_checks={},
    )

    add_text_inputs(app)
    return app


FILE = File()


class Thing(BaseModel):
    name: str
    tags: list[str] = []


class Named(BaseModel):
    name: str


def add_text_inputs(app: FastAPI) -> None:
    """Routes with every kind of text input: path, query, header, JSON and form bodies."""

    @app.get("/things/{thing_id}", responses=problem_responses(404))
    async def thing(thing_id: int, q: str = "", key: str = Header("")) -> dict[str, int]:
        return {"id": thing_id}

    @app.put("/things/{thing_id}")
    async def put_thing(thing_id: str, body: Thing | Named) -> dict[str, str]:
        return {"id": thing_id}

    @app.post("/login")
    async def login(username: str = Form(), password: str = Form()) -> dict[str, str]:
        return {"username": username}

    @app.post("/upload")
    async def upload(title: str = Form(), file: UploadFile = FILE) -> dict[str, str]:
        return {"title": title}

    raw_body = {"content": {"text/plain": {"schema": {"properties": {"text": {}}}}}}

    @app.post("/raw", openapi_extra={"requestBody": raw_body})
    async def raw() -> None:
        """A body the check does not know how to write; it tries the others."""


@pytest.fixture
def offline_app() -> FastAPI:
    """What a service's suite defines; the plugin's ``offline_client`` calls it."""
    return conventional_app()


@pytest.mark.parametrize("check", APP_CONVENTIONS, ids=lambda check: check.__name__)
async def test_a_conventional_app_passes(
    check: AppCheck, offline_client: httpx.AsyncClient
) -> None:
    await check(offline_client, SERVICE)


async def test_errors_documented_as_plain_json_fail_the_check() -> None:
    app = FastAPI()

    @app.get("/things/{thing_id}", responses={404: {"description": "No such thing."}})
    async def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    async with asgi_client(app) as client:
        with pytest.raises(AssertionError):
            await errors_are_documented_as_problem_json(client, SERVICE)


async def test_an_app_that_stores_any_text_fails_the_text_check() -> None:
    app = FastAPI()
    install_problem_handlers(app)
    add_text_inputs(app)

    async with asgi_client(app) as client:
        with pytest.raises(AssertionError, match=r"GET /things/\{thing_id\} path thing_id: "):
            await unstorable_text_is_refused_everywhere(client, SERVICE)


async def test_an_app_without_a_body_fails_the_text_check() -> None:
    app = FastAPI()

    async with asgi_client(app) as client:
        with pytest.raises(AssertionError, match="no body field"):
            await unstorable_text_is_refused_everywhere(client, SERVICE)


async def test_the_health_check_notices_another_service_name(
    offline_client: httpx.AsyncClient,
) -> None:
    with pytest.raises(AssertionError):
        await APP_CONVENTIONS[0](offline_client, "fastapi")


async def _forever() -> None:
    await asyncio.Event().wait()


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def lifespan_module(*, leaks: bool) -> ModuleType:
    """A stand-in for a service's ``app.main``: an engine, a client and a task, then ``finish``.

    ``leaks=True`` writes it the old way, cleaning up only after a start that succeeded.
    """
    module = ModuleType("lifespan_under_test")
    module.create_http_client = create_http_client  # type: ignore[attr-defined]
    module.finish = lambda: None  # type: ignore[attr-defined]

    @asynccontextmanager
    async def careful(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none")
            stack.push_async_callback(app.state.engine.dispose)
            client = module.create_http_client(base_url="http://127.0.0.1:9", timeout=1.0)
            stack.push_async_callback(client.aclose)
            task = asyncio.create_task(_forever())
            stack.push_async_callback(_stop, task)
            module.finish()
            yield

    @asynccontextmanager
    async def leaky(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none")
        client = module.create_http_client(base_url="http://127.0.0.1:9", timeout=1.0)
        module.finish()
        try:
            yield
        finally:
            await client.aclose()
            await app.state.engine.dispose()

    module.lifespan = leaky if leaks else careful  # type: ignore[attr-defined]
    return module


async def test_a_lifespan_that_cleans_up_after_a_failed_start_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = lifespan_module(leaks=False)
    app = FastAPI(lifespan=module.lifespan)

    await check_failed_start_releases_resources(
        app, monkeypatch, module=module, failing_step="finish"
    )

    assert app.state.engine.sync_engine.pool.checkedout() == 0


async def test_a_lifespan_that_leaks_after_a_failed_start_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = lifespan_module(leaks=True)
    app = FastAPI(lifespan=module.lifespan)

    with pytest.raises(AssertionError, match="clients left open"):
        await check_failed_start_releases_resources(
            app, monkeypatch, module=module, failing_step="finish"
        )


async def test_a_module_without_http_clients_or_engine_is_checked_for_tasks_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = ModuleType("bare_lifespan")
    module.finish = lambda: None  # type: ignore[attr-defined]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        module.finish()
        yield

    app = FastAPI(lifespan=lifespan)

    await check_failed_start_releases_resources(
        app, monkeypatch, module=module, failing_step="finish"
    )

    assert not hasattr(app.state, "engine")


@pytest.mark.parametrize(("lasts", "passes"), [(0.05, True), (None, False)])
async def test_a_task_the_failed_start_leaves_must_end_on_its_own(
    monkeypatch: pytest.MonkeyPatch, lasts: float | None, passes: bool
) -> None:
    """A cleanup that ends right after (a shielded close) passes; a task that runs on fails."""
    module = ModuleType("lingering_lifespan")
    module.finish = lambda: None  # type: ignore[attr-defined]
    lingering: list[asyncio.Task[None]] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        work = asyncio.sleep(lasts) if lasts is not None else _forever()
        lingering.append(asyncio.create_task(work))  # type: ignore[arg-type]
        module.finish()
        yield

    app = FastAPI(lifespan=lifespan)
    try:
        if passes:
            await check_failed_start_releases_resources(
                app, monkeypatch, module=module, failing_step="finish"
            )
        else:
            with pytest.raises(AssertionError, match="tasks left running"):
                await check_failed_start_releases_resources(
                    app, monkeypatch, module=module, failing_step="finish"
                )
    finally:
        await _stop(lingering[0])


async def test_tasks_of_another_app_in_the_same_loop_are_not_the_failed_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another app's background loop keeps making tasks (a broker client's fetches) meanwhile:
    not a leak of the start under check."""
    module = ModuleType("slow_lifespan")
    module.finish = lambda: None  # type: ignore[attr-defined]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.sleep(0.05)  # the neighbour runs meanwhile
        module.finish()
        yield

    app = FastAPI(lifespan=lifespan)
    running = asyncio.Event()
    others: list[asyncio.Task[None]] = []

    async def busy_neighbour() -> None:
        while True:
            others.append(asyncio.create_task(_forever()))
            running.set()
            await asyncio.sleep(0.001)

    neighbour = asyncio.create_task(busy_neighbour())
    await running.wait()
    try:
        await check_failed_start_releases_resources(
            app, monkeypatch, module=module, failing_step="finish"
        )
        assert len(others) > 1  # it made tasks while the check ran, and they still run
    finally:
        for task in [neighbour, *others]:
            await _stop(task)


@pytest.mark.parametrize("factory", [None, "custom"])
async def test_the_check_restores_the_loops_task_factory(
    monkeypatch: pytest.MonkeyPatch, factory: str | None
) -> None:
    loop = asyncio.get_running_loop()
    made: list[object] = []

    def custom(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> asyncio.Task[Any]:
        made.append(coro)
        return asyncio.Task(coro, loop=loop, **options)

    previous = loop.get_task_factory()
    loop.set_task_factory(custom if factory else None)
    try:
        module = lifespan_module(leaks=False)
        await check_failed_start_releases_resources(
            FastAPI(lifespan=module.lifespan), monkeypatch, module=module, failing_step="finish"
        )
        assert loop.get_task_factory() is (custom if factory else None)
    finally:
        loop.set_task_factory(previous)


CAREFUL = lifespan_module(leaks=False)

test_app_keeps_fleet_convention = fleet_app_test(
    CAREFUL,
    service=SERVICE,
    failing_start_step="finish",
    absent_routes=[("POST", "/_pact/provider-states")],
)


async def test_a_token_verifier_client_left_open_by_a_failed_start_is_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The service module never names create_http_client: common-libs makes the JWKS client.
    module = ModuleType("verifier_lifespan")
    module.finish = lambda: None  # type: ignore[attr-defined]
    settings = TokenSettingsForTests()

    @asynccontextmanager
    async def leaky(app: FastAPI) -> AsyncIterator[None]:
        leaked_stack = AsyncExitStack()  # never closed: the client it was to close stays open
        app.state.token_verifier = open_token_verifier(leaked_stack, settings)
        module.finish()
        yield

    app = FastAPI(lifespan=leaky)

    with pytest.raises(AssertionError, match="clients left open"):
        await check_failed_start_releases_resources(
            app, monkeypatch, module=module, failing_step="finish"
        )


async def test_an_app_without_a_problem_type_catalogue_fails_the_problem_types_check() -> None:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    async with asgi_client(app) as client:
        with pytest.raises(AssertionError, match="no top-level x-problem-types catalogue"):
            await problem_types_are_documented(client, SERVICE)
