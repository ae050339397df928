"""The throwaway NATS server: the binary, JetStream through a real client, the plugin's fixture."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import nats
import pytest

from common_libs.testing import NatsServer, ServerProcess, free_port, start_nats
from common_libs.testing import nats as nats_module
from common_libs.testing.nats import find_nats_server


async def jetstream_answers(url: str) -> bool:
    """Connect with nats-py, store a message in a new stream, read the account back."""
    client = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        js = client.jetstream()
        await js.add_stream(name="PROBE", subjects=["probe.>"])
        ack = await js.publish("probe.one", b"hello", headers={"Nats-Msg-Id": "one"})
        info = await js.account_info()
        return ack.seq == 1 and info.streams >= 1
    finally:
        await client.close()


async def stored_messages(url: str, stream: str) -> int:
    client = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        info = await client.jetstream().stream_info(stream)
    finally:
        await client.close()
    return info.state.messages


def listening(url: str) -> bool:
    """Whether anything accepts TCP connections at the ``nats://host:port`` URL."""
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except OSError:
        return False
    return True


async def test_plugin_fixture_yields_a_server_whose_jetstream_answers(
    nats_server: NatsServer,
) -> None:
    client = await nats.connect(nats_server.url, connect_timeout=2, allow_reconnect=False)
    try:
        info = await client.jetstream().account_info()
    finally:
        await client.close()

    assert info.limits.max_streams == -1


async def test_start_nats_serves_jetstream_and_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[ServerProcess] = []
    real_start = ServerProcess.start

    def recording_start(self: ServerProcess) -> ServerProcess:
        started.append(self)
        return real_start(self)

    monkeypatch.setattr(ServerProcess, "start", recording_start)

    with start_nats(prefer_docker=False) as server:
        assert server.url.startswith("nats://127.0.0.1:")
        assert await jetstream_answers(server.url)
        [process] = started
        assert process.process is not None
        workdir = process.log_path.parent
        assert (workdir / "store" / "jetstream").is_dir()

    assert process.process.poll() is not None
    assert not workdir.exists()
    assert not listening(server.url)


async def test_start_nats_on_a_port_and_store_restarts_with_what_it_stored(tmp_path: Path) -> None:
    port, store = free_port(), tmp_path / "store"

    with start_nats(port=port, store_dir=store) as first:
        assert first.url == f"nats://127.0.0.1:{port}"
        assert await jetstream_answers(first.url)
    assert not listening(first.url)
    with start_nats(port=port, store_dir=store) as second:
        assert second == first
        assert await stored_messages(second.url, "PROBE") == 1

    assert not listening(second.url)
    assert (store / "jetstream").is_dir()


def test_find_nats_server_finds_the_binary_on_path() -> None:
    binary = find_nats_server()

    assert binary is not None
    assert os.access(binary, os.X_OK)


def test_find_nats_server_falls_back_to_debians_sbin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An unprivileged user's PATH has no /usr/sbin, where Debian puts nats-server.
    binary = tmp_path / "sbin" / "nats-server"
    binary.parent.mkdir()
    binary.touch(mode=0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(nats_module, "_DEBIAN_BINARY", binary)

    assert find_nats_server() == binary


def test_find_nats_server_without_the_binary_finds_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(nats_module, "_DEBIAN_BINARY", tmp_path / "nats-server")

    assert find_nats_server() is None


INNER_TEST = """
import asyncio
from pathlib import Path

import nats


def test_jetstream(nats_server):
    async def account_info():
        client = await nats.connect(nats_server.url, connect_timeout=2, allow_reconnect=False)
        try:
            return await client.jetstream().account_info()
        finally:
            await client.close()

    asyncio.run(account_info())
    Path("server.txt").write_text(nats_server.url)
"""


def run_inner_suite(pytester: pytest.Pytester) -> str:
    """Run a suite that asks ``nats_server``'s JetStream; return the URL it was given."""
    pytester.makepyfile(test_inner=INNER_TEST)

    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio")

    result.assert_outcomes(passed=1)
    return Path(pytester.path / "server.txt").read_text()


def test_fixture_uses_the_server_named_by_test_nats_url(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, nats_server: NatsServer
) -> None:
    monkeypatch.setenv("TEST_NATS_URL", nats_server.url)

    assert run_inner_suite(pytester) == nats_server.url


def test_fixture_starts_a_throwaway_server_and_removes_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, nats_server: NatsServer
) -> None:
    monkeypatch.delenv("TEST_NATS_URL", raising=False)

    inner = run_inner_suite(pytester)

    assert inner != nats_server.url
    assert not listening(inner)
