"""create_http_client with several origins (a peer's replicas), against real uvicorn processes:
calls in turn, a refused connection moved on to the next, a request that went out never again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.upstream_app import upstream_server

from common_libs.http_client import FailoverTransport, create_http_client
from common_libs.testing import free_port


@pytest.fixture(scope="module")
def second_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Another process of the upstream app: the peer's second replica."""
    with upstream_server(Path(tmp_path_factory.mktemp("second-upstream"))) as server:
        yield server.url


def _nothing_listens() -> str:
    return f"http://127.0.0.1:{free_port()}"


async def test_calls_go_to_each_replica_in_turn(upstream: str, second_upstream: str) -> None:
    async with create_http_client(base_url=f"{upstream},{second_upstream}") as client:
        seen = [(await client.get("/echo")).json()["url"] for _ in range(4)]

    assert seen == [f"{upstream}/echo", f"{second_upstream}/echo"] * 2


async def test_a_refused_connection_goes_to_the_next_replica_whatever_the_method(
    upstream: str,
) -> None:
    name = f"refused-{free_port()}"
    async with create_http_client(base_url=f"{_nothing_listens()},{upstream}") as client:
        answers = [(await client.post(f"/posts/{name}")).json()["count"] for _ in range(2)]
        echoed = await client.get("/echo")

    # Each call, the one whose turn was the dead replica's too, reached the live one once.
    assert answers == [1, 2]
    assert echoed.json()["headers"]["host"] == upstream.removeprefix("http://")


async def test_a_request_that_went_out_is_not_sent_to_another_replica(
    upstream: str, second_upstream: str
) -> None:
    name = f"sent-once-{free_port()}"
    async with create_http_client(base_url=f"{upstream},{second_upstream}", timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"/posts/{name}", params={"seconds": 2})
    async with httpx.AsyncClient() as plain:
        counts = [
            (await plain.get(f"{url}/posts/{name}")).json()["count"]
            for url in (upstream, second_upstream)
        ]

    assert counts == [1, 0]


async def test_with_no_replica_taking_the_connection_the_last_error_is_raised() -> None:
    async with create_http_client(base_url=f"{_nothing_listens()},{_nothing_listens()}") as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/echo")


@pytest.mark.parametrize(
    "base_url",
    ["http://127.0.0.1:1/api,http://127.0.0.1:2/other", "http://127.0.0.1:1,/relative"],
)
def test_replicas_must_differ_only_in_host_and_port(base_url: str) -> None:
    with pytest.raises(ValueError, match="differ only in host and port"):
        create_http_client(base_url=base_url)


def test_a_failover_transport_needs_an_origin() -> None:
    with pytest.raises(ValueError, match="at least one origin"):
        FailoverTransport(httpx.AsyncHTTPTransport(), [])
