"""Handles on the test's server processes: the OpenAI-compatible test server and the stubs."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from common_libs.testing import ServerProcess, free_port

SERVICE_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def uvicorn_process(
    app: str, *, log_path: Path, env: Mapping[str, str] | None = None, factory: bool = False
) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free port of 127.0.0.1; yield its base URL."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--factory"] if factory else ["--log-level", "warning"]
    base = f"http://127.0.0.1:{port}"
    # The service itself is up once /ready answers 200 (its background start-up work is done).
    paths = {"tests.support.issuer_stub:app": "/auth/jwks", "app.main:create_app": "/ready"}
    ready = base + paths.get(app, "/health")
    with ServerProcess(argv, env=env, cwd=SERVICE_ROOT, log_path=log_path, ready_url=ready):
        yield base


class FakeLlm:
    """Script the OpenAI-compatible test server and read what it received."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.api_url = base_url + "/v1"

    async def _post(self, path: str, payload: Any = None) -> None:
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            (await http.post(path, json=payload)).raise_for_status()

    async def reset(self) -> None:
        """Forget scripts and recordings."""
        await self._post("/_control/reset")

    async def enqueue(self, *behaviours: dict[str, Any], endpoint: str = "chat") -> None:
        """Queue behaviours for the next requests to ``endpoint``."""
        await self._post("/_control/enqueue", {"endpoint": endpoint, "behaviours": behaviours})

    async def release(self, gate: str) -> None:
        """Let streams waiting at ``gate`` go on."""
        await self._post(f"/_control/release/{gate}")

    async def state(self) -> dict[str, Any]:
        """``{requests: [...], streams: [...]}`` as recorded so far."""
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            response = await http.get("/_control/state")
            response.raise_for_status()
            state: dict[str, Any] = response.json()
            return state

    async def chat_requests(self) -> list[dict[str, Any]]:
        """The bodies of the chat completion requests received."""
        requests = (await self.state())["requests"]
        return [r["body"] for r in requests if r["path"] == "/v1/chat/completions"]


class CatalogStub:
    """Set the stub catalog's products and read the searches it received."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def reset(self) -> None:
        """No products, no queries, answering normally."""
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            (await http.post("/_stub/reset")).raise_for_status()

    async def set_products(self, products: list[dict[str, Any]]) -> None:
        """Replace the catalog's products."""
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            (await http.put("/_stub/products", json=products)).raise_for_status()

    async def set_mode(self, mode: str) -> None:
        """``ok``, ``error`` (500) or ``slow`` (stalls)."""
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            (await http.put("/_stub/mode", json={"mode": mode})).raise_for_status()

    async def queries(self) -> list[dict[str, Any]]:
        """The ``{q, limit}`` of every search received."""
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            response = await http.get("/_stub/queries")
            response.raise_for_status()
            queries: list[dict[str, Any]] = response.json()
            return queries


def failing(status: int) -> dict[str, Any]:
    """A behaviour answering ``status``; the SDK waits only 10 ms before retrying it."""
    return {"kind": "status", "status": status, "headers": {"retry-after-ms": "10"}}


def product(
    name: str, *, sku: str, price: str, description: str = "", stock: int = 5
) -> dict[str, Any]:
    """A product as the catalog's API renders it."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, sku)),
        "sku": sku,
        "name": name,
        "description": description,
        "category": "test",
        "price": price,
        "currency": "USD",
        "stock_available": stock,
        "created_at": "2026-11-26T10:00:00Z",
        "updated_at": "2026-11-26T10:00:00Z",
    }


def parse_events(text: str) -> list[tuple[str, str]]:
    """``(event, data)`` pairs of a text/event-stream body (event ``message`` when unnamed)."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        events.append((name, "\n".join(data)))
    return events


async def next_event(lines: AsyncIterator[str]) -> tuple[str, str]:
    """Read one server-sent event from a response's line iterator."""
    name, data = "message", []
    async for line in lines:
        if not line:
            if data:
                return name, "\n".join(data)
            continue
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
    raise EOFError("the stream ended")


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, within: float, message: str
) -> float:
    """Poll ``condition`` until true; return the seconds it took, or raise TimeoutError."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > within:
            raise TimeoutError(f"{message} not met within {within:g} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started
