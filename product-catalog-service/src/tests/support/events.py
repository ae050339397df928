"""Reading the catalog's events back from the broker, and a nats-server a test stops itself."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Self

from common_libs.testing import ServerProcess, free_port
from common_libs.testing.events import StreamEvent, stream_events, wait_for_stream_events
from common_libs.testing.nats import find_nats_server

PRODUCT_EVENTS = "catalog.product.>"


async def created_events(nats_url: str) -> list[StreamEvent]:
    """Every catalog.product.created event in the stream (what a rejected create would have
    published, under an id nobody knows)."""
    return await stream_events(nats_url, "CATALOG", subject="catalog.product.created")


async def wait_for_events(
    nats_url: str, subjects: Collection[str], count: int, *, within: float = 10.0
) -> list[StreamEvent]:
    """Wait until the stream holds ``count`` events about these products; return them in stream
    order (an extra event published by then shows up, and fails the caller's comparison)."""
    wanted = set(subjects)

    def mine(events: list[StreamEvent]) -> list[StreamEvent]:
        return [event for event in events if event.envelope.subject in wanted]

    events = await wait_for_stream_events(
        nats_url,
        "CATALOG",
        lambda events: len(mine(events)) >= count,
        subject=PRODUCT_EVENTS,
        within=within,
        message=f"{count} events about {sorted(wanted)}",
    )
    return mine(events)


class RestartableNats:
    """A nats-server (JetStream) on a fixed free port and store folder of its own, which a test
    stops and starts again as the same broker, by handle."""

    def __init__(self, folder: Path) -> None:
        binary = find_nats_server()
        if binary is None:  # pragma: no cover - the session's nats_server installs it
            raise RuntimeError("nats-server is not installed")
        self.port, monitor_port = free_port(), free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.argv = [str(binary), "-a", "127.0.0.1", "-p", str(self.port)]
        self.argv += ["-m", str(monitor_port), "-js", "-sd", str(folder / "store")]
        self.ready_url = f"http://127.0.0.1:{monitor_port}/healthz?js-enabled-only=true"
        self._process: ServerProcess | None = None

    def start(self) -> Self:
        """Start it (again) and wait until JetStream is enabled."""
        self._process = ServerProcess(
            self.argv,
            log_path=self.folder / "nats-server.log",
            ready_url=self.ready_url,
            ready_timeout=30,
        )
        self._process.start()
        return self

    def stop(self) -> None:
        """Stop it (SIGTERM); its stored streams stay in the folder."""
        if self._process is not None:
            self._process.stop()
            self._process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
