"""Real HTTP servers in a background thread (their own event loop) on a free 127.0.0.1 port."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import uvicorn
from common_libs.testing import free_port, wait_until


class ThreadedServer:
    """uvicorn serving ``app`` in a daemon thread; stopped by its own handle on exit."""

    def __init__(self, app: Any, *, lifespan: str = "off") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            lifespan=lifespan,
            loop="asyncio",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        wait_until(
            lambda: self._server.started or not self._thread.is_alive(),
            timeout=20,
            message=f"server on port {self.port} started",
        )
        if not self._server.started:
            raise RuntimeError(f"the server on port {self.port} did not start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    within: float = 10.0,
    message: str = "condition",
) -> None:
    """Poll ``condition`` without blocking the event loop until it holds, or fail."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not met within {within:g} s")
        await asyncio.sleep(0.02)
