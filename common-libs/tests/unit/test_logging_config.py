"""configure_logging: one JSON object per line on stderr, stamped with service and request id."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from common_libs.logging_config import RequestContextFilter, configure_logging
from common_libs.request_id import RequestIdMiddleware

pytestmark = pytest.mark.usefixtures("restore_logging")


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


def test_record_is_one_json_line_with_service_and_null_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(service="orders")

    logging.getLogger("orders.manager").info("order %s placed", "o-1")

    [line] = json_lines(capsys.readouterr().err)
    assert line["message"] == "order o-1 placed"
    assert line["level"] == "INFO"
    assert line["name"] == "orders.manager"
    assert line["service"] == "orders"
    assert line["request_id"] is None
    assert "time" in line


async def test_records_inside_a_request_carry_its_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(service="orders")
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)

    @app.get("/orders")
    async def list_orders() -> list[str]:
        logging.getLogger("orders.routes").info("listing orders")
        return []

    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/orders", headers={"X-Request-ID": "req-42"})

    [line] = [
        line for line in json_lines(capsys.readouterr().err) if line["name"] == "orders.routes"
    ]
    assert line["request_id"] == "req-42"
    assert line["service"] == "orders"


def test_uvicorn_records_go_through_the_same_json_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    access = logging.getLogger("uvicorn.access")
    access.addHandler(logging.NullHandler())
    access.propagate = False

    configure_logging(service="orders")
    access.info("GET /health 200")

    assert access.handlers == []
    [line] = json_lines(capsys.readouterr().err)
    assert (line["name"], line["message"], line["service"]) == (
        "uvicorn.access",
        "GET /health 200",
        "orders",
    )


def test_access_log_switched_off_by_uvicorn_stays_off(capsys: pytest.CaptureFixture[str]) -> None:
    access = logging.getLogger("uvicorn.access")
    # What `uvicorn --no-access-log` leaves behind.
    access.handlers.clear()
    access.propagate = False

    configure_logging(service="orders")
    access.info("GET /health 200")

    assert json_lines(capsys.readouterr().err) == []


def test_uvicorn_loggers_follow_the_configured_level(capsys: pytest.CaptureFixture[str]) -> None:
    access = logging.getLogger("uvicorn.access")
    access.addHandler(logging.NullHandler())
    access.setLevel(logging.INFO)  # as uvicorn's own logging config sets it

    configure_logging(service="orders", level="WARNING")
    access.info("GET /health 200")
    access.warning("slow request")

    assert [line["message"] for line in json_lines(capsys.readouterr().err)] == ["slow request"]


def test_uvicorn_colour_copy_of_the_message_is_left_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(service="orders")

    logging.getLogger("uvicorn.error").info(
        "Application startup complete.",
        extra={"color_message": "\x1b[32mApplication startup complete.\x1b[0m"},
    )

    [line] = json_lines(capsys.readouterr().err)
    assert line["message"] == "Application startup complete."
    assert "color_message" not in line


def test_records_below_the_level_are_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(service="orders", level="WARNING")

    logging.getLogger("orders").info("chatty")
    logging.getLogger("orders").warning("important")

    assert [line["message"] for line in json_lines(capsys.readouterr().err)] == ["important"]


async def test_the_http_clients_request_lines_are_left_out_above_debug(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    async def call() -> None:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://peer") as client:
            assert (await client.get("/ping")).status_code == 200

    configure_logging(service="chat")
    await call()
    logging.getLogger("httpx2").info("HTTP Request: POST http://llm/v1/chat/completions")
    logging.getLogger("httpx2").warning("a retry")
    assert [line["message"] for line in json_lines(capsys.readouterr().err)] == ["a retry"]

    configure_logging(service="chat", level="DEBUG")
    await call()
    lines = json_lines(capsys.readouterr().err)
    assert any(
        line["name"] == "httpx" and line["message"].startswith("HTTP Request: GET http://peer/ping")
        for line in lines
    )


def test_exceptions_are_logged_inside_the_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(service="orders")

    try:
        raise ValueError("bad stock value")
    except ValueError:
        logging.getLogger("orders").exception("reservation failed")

    [line] = json_lines(capsys.readouterr().err)
    assert "ValueError: bad stock value" in line["exc_info"]


def test_plain_text_format_names_service_request_id_and_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(service="orders", json=False)

    logging.getLogger("orders").warning("stock low")

    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith(
        "WARNING orders stock low service=orders request_id=None trace_id=None span_id=None"
    )


def test_configuring_twice_keeps_a_single_handler(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(service="orders")
    configure_logging(service="orders")

    logging.getLogger("orders").warning("once")

    assert len(json_lines(capsys.readouterr().err)) == 1


def test_context_filter_stamps_without_dropping() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "msg", None, None)

    assert RequestContextFilter("users").filter(record) is True
    assert (record.service, record.request_id) == ("users", None)
    assert (record.trace_id, record.span_id) == (None, None)
