"""The broker connection, the streams command and the test kit's stream readers, for real."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import cast

import nats
import pytest
from nats.errors import NoServersError
from nats.js import JetStreamContext
from nats.js.api import StreamConfig, StreamInfo
from nats.js.errors import BadRequestError, NotFoundError

import common_libs.events as events_package
from common_libs.events import Broker, StreamSpec, streams
from common_libs.events.streams import FLEET_STREAMS, ensure_stream, main
from common_libs.testing import free_port
from common_libs.testing.events import stream_events, wait_for_stream_events
from common_libs.testing.nats import NatsServer

from .conftest import Domain


async def test_the_streams_command_creates_the_fleets_streams(
    nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    await asyncio.to_thread(main, ["--nats-url", nats_server.url, "--replicas", "1"])
    assert capsys.readouterr().out == "streams ready: CATALOG, ORDERS, USERS, DEADLETTER\n"
    client = await nats.connect(nats_server.url)
    try:
        js = client.jetstream()
        for spec in FLEET_STREAMS:
            info = await js.stream_info(spec.name)
            assert info.config.subjects == list(spec.subjects)
    finally:
        await client.close()


async def test_ensuring_a_stream_again_brings_its_configuration_up_to_date(
    broker: Broker, domain: Domain
) -> None:
    js = await broker.jetstream()
    await ensure_stream(js, domain.stream)
    longer = StreamSpec(domain.stream.name, domain.stream.subjects, max_age=timedelta(days=9))
    await ensure_stream(js, longer)  # a service: an existing stream stays as the operator left it
    assert (await js.stream_info(domain.stream.name)).config.max_age == 7 * 86400
    await ensure_stream(js, longer, update=True)  # the operator's command
    assert (await js.stream_info(domain.stream.name)).config.max_age == 9 * 86400


class _CreatedRightAfterTheLookup:
    """A service's JetStream, but another client creates the stream (with a longer max age, so
    the broker refuses the service's add) right after the service's first lookup found nothing."""

    def __init__(self, js: JetStreamContext, other: JetStreamContext, spec: StreamSpec) -> None:
        self.js, self.other, self.spec = js, other, spec
        self.lookups = 0

    async def stream_info(self, name: str) -> StreamInfo:
        self.lookups += 1
        try:
            return await self.js.stream_info(name)
        except NotFoundError:
            if self.lookups == 1:
                longer = StreamSpec(self.spec.name, self.spec.subjects, max_age=timedelta(days=9))
                await self.other.add_stream(longer.config())
            raise

    async def add_stream(self, config: StreamConfig) -> StreamInfo:
        return await self.js.add_stream(config)


async def test_a_stream_another_client_creates_meanwhile_is_taken_as_it_is(
    broker: Broker, nats_server: NatsServer, domain: Domain
) -> None:
    other = await nats.connect(nats_server.url)
    try:
        racing = _CreatedRightAfterTheLookup(
            await broker.jetstream(), other.jetstream(), domain.stream
        )
        await ensure_stream(cast(JetStreamContext, racing), domain.stream)
        # The lookup that found nothing, the add the broker refused, the lookup that found it.
        assert racing.lookups == 2
        info = await other.jetstream().stream_info(domain.name)
        assert info.config.max_age == 9 * 86400  # the other client's stream, left as it is
    finally:
        await other.close()


async def test_an_add_the_broker_refuses_for_good_is_raised(
    broker: Broker, domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    js = await broker.jetstream()
    overlapping = StreamSpec(f"{domain.name}_OTHER", domain.stream.subjects)
    await js.add_stream(overlapping.config())
    monkeypatch.setattr(streams, "_APPEAR_SECONDS", 0.2)
    try:
        with pytest.raises(BadRequestError) as refused:
            await ensure_stream(js, domain.stream)
        assert refused.value.err_code == 10065  # subjects overlap: the stream never appears
    finally:
        await js.delete_stream(overlapping.name)


async def test_the_broker_connects_when_first_used_and_closes_once(
    nats_server: NatsServer,
) -> None:
    broker = Broker(nats_server.url, name="lazy")
    assert not broker.connected
    await broker.close()  # nothing open: nothing to do
    first = await broker.jetstream()
    assert broker.connected
    assert (await first.account_info()).streams >= 0
    await broker.jetstream()
    await broker.close()
    assert not broker.connected


async def test_a_broker_that_does_not_answer_fails_fast_and_logs_no_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = Broker(f"nats://127.0.0.1:{free_port()}", name="nowhere", connect_timeout=0.2)
    with caplog.at_level(logging.WARNING, "common_libs.events"), pytest.raises(NoServersError):
        await broker.jetstream()
    assert "event broker connection" in caplog.text
    assert "127.0.0.1" not in caplog.text


async def test_reading_a_stream_that_does_not_exist_finds_nothing(nats_server: NatsServer) -> None:
    assert await stream_events(nats_server.url, "NO_SUCH_STREAM") == []
    with pytest.raises(AssertionError, match="timed out waiting for one event; the stream holds"):
        await wait_for_stream_events(
            nats_server.url,
            "NO_SUCH_STREAM",
            lambda e: len(e) == 1,
            within=0.1,
            message="one event",
        )


async def test_reading_a_stream_that_holds_nothing_yet_finds_nothing(
    broker: Broker, nats_server: NatsServer, domain: Domain
) -> None:
    await ensure_stream(await broker.jetstream(), domain.stream)
    assert await stream_events(nats_server.url, domain.name) == []


async def test_the_streams_command_gives_up_on_a_broker_that_does_not_answer() -> None:
    import asyncio

    with pytest.raises(NoServersError):
        await asyncio.to_thread(main, ["--nats-url", f"nats://127.0.0.1:{free_port()}"])


def test_the_package_runs_the_streams_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import runpy
    import sys

    monkeypatch.setattr(sys, "argv", ["python -m common_libs.events", "--help"])
    # What ``python -m common_libs.events`` runs:
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(
            str(Path(events_package.__file__).with_name("__main__.py")), run_name="__main__"
        )
    assert exited.value.code == 0
    assert "--replicas" in capsys.readouterr().out


async def test_a_connect_cancelled_halfway_closes_its_socket() -> None:
    """The lifespan may end while a connect waits for a slow broker: no socket is left open."""
    import asyncio

    accepted: asyncio.Queue[asyncio.StreamReader] = asyncio.Queue()
    writers: list[asyncio.StreamWriter] = []

    async def silent_broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await accepted.put(reader)  # never says INFO: the client waits

    server = await asyncio.start_server(silent_broker, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    broker = Broker(f"nats://127.0.0.1:{port}", name="cancelled", connect_timeout=30)
    connecting = asyncio.create_task(broker.jetstream())
    try:
        reader = await asyncio.wait_for(accepted.get(), timeout=10)
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # the client hung up
        assert not broker.connected
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_users_asking_at_once_share_one_connection(nats_server: NatsServer) -> None:
    import asyncio

    broker = Broker(nats_server.url, name="shared")
    try:
        contexts = await asyncio.gather(*(broker.jetstream() for _ in range(5)))
        assert len({id(context._nc) for context in contexts}) == 1
    finally:
        await broker.close()
