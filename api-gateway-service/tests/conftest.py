"""Fixtures: four real uvicorn upstreams, and real nginx gateways started from this config.

Every process binds 127.0.0.1 on a port the OS chose, is started once per session or module, and is
stopped through its own handle. Each gateway has its own temporary work directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from support.servers import Gateway, Stub, start_gateway, start_stubs

GatewayFactory = Callable[..., Gateway]


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the processes' stdout and stderr go (the gateway's access log is its stdout)."""
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def stubs(log_dir: Path) -> Iterator[dict[str, Stub]]:
    """One uvicorn upstream per service: user, catalog, order, chat."""
    started = start_stubs(log_dir)
    yield started
    for stub in started.values():
        stub.process.stop()


@pytest.fixture(scope="session")
def upstreams(stubs: dict[str, Stub]) -> dict[str, str]:
    """The stubs' addresses, as the gateway's *_SERVICE_UPSTREAM settings take them."""
    return {name: stub.address for name, stub in stubs.items()}


@pytest.fixture(scope="session")
def make_gateway(log_dir: Path) -> Iterator[GatewayFactory]:
    """Start extra gateways with their own settings; all are stopped at the end of the session."""
    started: list[Gateway] = []

    def make(
        *, upstreams: Mapping[str, str], overrides: Mapping[str, str] | None = None, name: str
    ) -> Gateway:
        gateway = start_gateway(
            log_dir=log_dir, upstreams=upstreams, overrides=overrides, name=name
        )
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        gateway.stop()


@pytest.fixture(scope="session")
def gateway(make_gateway: GatewayFactory, upstreams: dict[str, str]) -> Gateway:
    """The gateway with every default setting except its listen address and upstreams."""
    return make_gateway(upstreams=upstreams, name="gateway-default")


@pytest.fixture
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    """An HTTP client for the default gateway."""
    with httpx.Client(base_url=gateway.url, timeout=10.0) as http:
        yield http
