"""A lost database answers 503 problem+json with Retry-After (not 500), on a connection that stays
usable; text PostgreSQL cannot store answers 422. A real app served by uvicorn, a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common_libs.db import create_engine, get_db_connection, unit_of_work
from common_libs.problems import install_problem_handlers, problem_responses
from common_libs.service_app import create_service_app
from common_libs.testing import PostgresServer, create_database
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.db_checks import Call, check_lost_database_answers_503
from common_libs.testing.findings import async_findings
from common_libs.testing.outages import database_refusing_connections
from common_libs.testing.processes import UvicornThread, eventually, free_port

Connection = Annotated[AsyncConnection, Depends(get_db_connection, scope="function")]


class Settings(BaseModel):
    log_level: str = "INFO"
    log_json: bool = False


class Note(BaseModel):
    body: str


def notes_app(database_url: str, *, bare: bool = False) -> FastAPI:
    """A service app with a table of notes; ``bare``: only the problem handlers (no request
    checks), to reach the database with any text."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_engine(database_url, pool_size=2, max_overflow=0)
        yield
        await app.state.engine.dispose()

    if bare:
        app = FastAPI(lifespan=lifespan)
        install_problem_handlers(app)
    else:
        app = create_service_app(
            name="notes",
            version="1.0.0",
            summary="Notes.",
            lifespan=lifespan,
            settings=Settings(),
            ready_checks={},
        )

    # Documented like a service's routes that need the database (the client checks the types).
    @app.get("/notes", responses=problem_responses(503))
    async def count_notes(connection: Connection) -> int:
        return int(await connection.scalar(text("SELECT count(*) FROM notes")) or 0)

    @app.post("/notes", status_code=201, responses=problem_responses(503))
    async def add_note(note: Note, connection: Connection) -> Note:
        await connection.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": note.body})
        return note

    @app.get("/broken")
    async def broken(connection: Connection) -> int:
        return int(await connection.scalar(text("SELECT 1 / 0")) or 0)

    return app


@pytest.fixture(scope="module")
def database_url(postgres_server: PostgresServer) -> str:
    url = create_database(postgres_server, "cl_outage")

    async def make_table() -> None:
        engine = create_engine(url)
        async with unit_of_work(engine) as connection:
            await connection.execute(text("CREATE TABLE notes (body text NOT NULL)"))
        await engine.dispose()

    asyncio.run(make_table())
    return url


@pytest.fixture
def served(database_url: str) -> Iterator[UvicornThread]:
    with UvicornThread(notes_app(database_url), lifespan="on") as server:
        yield server


def call(
    connection: http.client.HTTPConnection, method: str, path: str, body: Any = None
) -> tuple[http.client.HTTPResponse, bytes]:
    payload = None if body is None else json.dumps(body)
    headers = {} if body is None else {"Content-Type": "application/json"}
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    return response, response.read()


def assert_database_unavailable(response: http.client.HTTPResponse, content: bytes) -> None:
    assert response.status == 503, content
    assert response.getheader("Content-Type") == "application/problem+json"
    assert response.getheader("Retry-After") == "5"
    assert json.loads(content)["detail"] == "The database is unavailable; try again later."


async def test_refused_and_lost_connections_answer_503_and_the_connection_serves_again(
    served: UvicornThread, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    assert call(connection, "GET", "/notes")[0].status == 200
    socket_before = connection.sock

    with caplog.at_level(logging.WARNING, logger="common_libs.problems"):
        async with database_refusing_connections(database_url):
            # The pool's connections were terminated, then new ones are refused.
            for method, path, body in [("GET", "/notes", None), ("POST", "/notes", {"body": "x"})]:
                for _ in range(2):
                    assert_database_unavailable(*call(connection, method, path, body))

    async def answers_again() -> bool:
        return call(connection, "GET", "/notes")[0].status == 200

    await eventually(answers_again, message="the app answers once the database is back")
    assert connection.sock is socket_before, "the server closed the keep-alive connection"
    connection.close()
    warnings = [record for record in caplog.records if record.name == "common_libs.problems"]
    assert warnings
    assert all(record.levelno == logging.WARNING for record in warnings)
    assert all(record.exc_info is None for record in warnings)
    assert all("database unavailable" in record.getMessage() for record in warnings)


async def test_a_database_that_refuses_tcp_connections_answers_503() -> None:
    app = notes_app(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere")
    with UvicornThread(app, lifespan="on") as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        assert_database_unavailable(*call(connection, "GET", "/notes"))
        connection.close()


async def test_a_wrong_statement_is_still_a_500(served: UvicornThread) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    response, content = call(connection, "GET", "/broken")
    connection.close()

    assert response.status == 500
    assert json.loads(content)["title"] == "Internal Server Error"


@pytest.mark.parametrize("body", ["a\x00b", "a\ud800b"], ids=["nul", "lone-surrogate"])
async def test_text_the_database_refuses_answers_422_without_a_traceback(
    database_url: str, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    # No request checks in front: the text reaches the driver and PostgreSQL.
    with UvicornThread(notes_app(database_url, bare=True), lifespan="on") as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        with caplog.at_level(logging.INFO):
            response, content = call(connection, "POST", "/notes", {"body": body})
        connection.close()

    assert response.status == 422, content
    assert response.getheader("Content-Type") == "application/problem+json"
    assert json.loads(content)["errors"] == [
        {
            "loc": [],
            "msg": "Text may not contain U+0000 (NUL) or unpaired surrogates (U+D800 to U+DFFF).",
            "type": "string_unstorable_character",
        }
    ]
    assert all(record.exc_info is None for record in caplog.records)


async def test_the_services_outage_check_passes_on_such_an_app(database_url: str) -> None:
    app = notes_app(database_url)
    calls: dict[str, Call] = {
        "count": lambda client: client.get("/notes"),
        "add": lambda client: client.post("/notes", json={"body": "x"}),
    }

    async with app.router.lifespan_context(app), asgi_client(app) as client:
        found = await async_findings(
            lambda: check_lost_database_answers_503(client, database_url, calls)
        )

    assert found == []


async def test_the_services_outage_check_notices_a_500(database_url: str) -> None:
    app = FastAPI()

    @app.get("/notes")
    async def fails() -> Response:
        return Response(status_code=500)

    async with asgi_client(app) as client:
        with pytest.raises(AssertionError, match="count before the outage: 500"):
            await check_lost_database_answers_503(
                client, database_url, {"count": lambda client: client.get("/notes")}
            )


async def test_only_a_database_with_a_plain_name_is_made_to_refuse() -> None:
    with pytest.raises(ValueError, match="unsafe database name"):
        async with database_refusing_connections("postgresql+asyncpg://u@h/a;b"):
            pass  # pragma: no cover - refused before
