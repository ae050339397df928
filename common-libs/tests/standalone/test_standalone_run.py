"""The runner's run in this process (a thread), stopped as its signal handlers stop it."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import nats
import pytest
from support.standalone import run_json, write_table

from common_libs.testing import free_port, wait_until
from common_libs.testing.standalone import (
    StandaloneError,
    Stop,
    _migrate,
    _Runner,
    _wait,
    main,
    read_config,
    run,
)

PACT = "pacts/sample-service-greeter.json"


class Running:
    """A run in a thread: its exit code once it ended."""

    def __init__(self, src: Path, environ: Mapping[str, str]) -> None:
        self.stop = Stop()
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, args=(src, environ), daemon=True)

    def _run(self, src: Path, environ: Mapping[str, str]) -> None:
        self.code = run(src, environ, self.stop)

    def ended(self, timeout: float = 60) -> int | None:
        self.thread.join(timeout)
        return self.code


@contextmanager
def running(src: Path, **variables: str) -> Iterator[Running]:
    environ = {**os.environ, "PORT": str(free_port()), **variables}
    environ.pop("NEIGHBOURS", None)
    environ.update(variables)
    run_ = Running(src, environ)
    run_.thread.start()
    try:
        yield run_
    finally:
        run_.stop.set()
        run_.ended()


async def stream_names(url: str) -> set[str]:
    client = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        return {info.config.name or "" for info in await client.jetstream().streams_info()}
    finally:
        await client.close()


def ready(src: Path, run_: Running) -> dict[str, object]:
    wait_until(
        lambda: (src / ".run" / "run.json").exists() or not run_.thread.is_alive(),
        timeout=90,
        message="the run is ready",
    )
    return run_json(src)


def test_stand_ins_tokens_and_the_llm_server_are_wired_into_the_service(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_table(
        sample,
        nats=True,
        tokens=True,
        llm=True,
        stand_ins={"greeter_url": PACT},
        environment={"GREETING": "from the table"},
    )
    with running(sample) as run_:
        facts = ready(sample, run_)
        service, stand_ins = facts["service"], facts["stand_ins"]
        assert isinstance(service, dict)
        assert isinstance(stand_ins, dict)
        settings = httpx.get(f"{service['url']}/settings").json()
        greeting = httpx.get(f"{stand_ins['greeter_url']}/greetings")
        token = httpx.get(f"{facts['tokens_url']}?role=admin")
        completion = httpx.post(
            f"{facts['llm_url']}/chat/completions",
            json={"model": "any", "messages": [{"role": "user", "content": "hi"}]},
        )

        streams = asyncio.run(stream_names(str(facts["nats_url"])))
        run_.stop.set()
        assert run_.ended() == 0

    assert greeting.json() == {"text": "hello from the pact"}
    assert settings["SAMPLE_JWKS_URL"] == f"{str(facts['tokens_url'])[: -len('/token')]}/auth/jwks"
    assert settings["SAMPLE_GREETING"] == "from the table"
    assert settings["SAMPLE_ENVIRONMENT"] == "development"
    assert token.json()["expires_in"] > 0
    assert completion.json()["object"] == "chat.completion"
    assert settings["NATS_URL"] == facts["nats_url"]
    assert {"CATALOG", "ORDERS", "USERS", "DEADLETTER"} <= streams
    output = capsys.readouterr().out
    assert f"plays {PACT} (1 interaction;" in output
    assert "curl -s '" in output
    assert "/token?role=admin'" in output
    assert (
        "GET /greetings 200" in (sample / ".run" / "logs" / "stand-in-greeter_url.log").read_text()
    )


def test_llm_rules_named_by_the_table_are_given_to_the_llm_server(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (sample / "llm-rules.json").write_text(
        '[{"name": "shoes", "pattern": "shoes", "reply": "grounded"}]'
    )
    write_table(sample, llm=True, **{"llm-rules": "llm-rules.json"})
    with running(sample) as run_:
        ready(sample, run_)

    assert "(1 rules from llm-rules.json)" in capsys.readouterr().out


def test_fleet_neighbours_use_the_fleets_nats_and_no_stand_ins(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_table(
        sample,
        nats=True,
        tokens=True,
        stand_ins={"greeter_url": "pacts/not-needed-with-the-fleet.json"},
        environment={"GREETING": "stand-in runs only"},
    )
    with running(sample, NEIGHBOURS="fleet", NATS_URL="nats://127.0.0.1:4999") as run_:
        facts = ready(sample, run_)
        service = facts["service"]
        assert isinstance(service, dict)
        settings = httpx.get(f"{service['url']}/settings").json()

    assert run_.code == 0
    assert facts["nats_url"] == "nats://127.0.0.1:4999"
    assert facts["stand_ins"] == {}
    assert facts["tokens_url"] is None
    assert settings["SAMPLE_GREETING"] is None
    assert settings["SAMPLE_JWKS_URL"] is None
    assert "neighbours: the fleet's" in capsys.readouterr().out


def test_a_service_that_exits_before_it_is_ready_stops_the_run_with_its_log(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_table(sample, app="sample_app.main:no_such_factory")
    with running(sample) as run_:
        assert run_.ended() == 1

    output = capsys.readouterr().out
    assert "/ready did not answer 200: the service exited" in output
    assert "no_such_factory" in output  # uvicorn's own words, from the service's log
    assert "everything it started has stopped" in output


def test_a_service_that_exits_after_it_was_ready_stops_the_run(sample: Path) -> None:
    write_table(sample)
    with running(sample) as run_:
        ready(sample, run_)
        service = run_json(sample)["service"]
        assert isinstance(service, dict)
        port = int(str(service["url"]).rpartition(":")[2])
        (pid,) = {
            int(path.parent.name)
            for path in Path("/proc").glob("[0-9]*/cmdline")
            if f"--port\0{port}\0".encode() in path.read_bytes()
        }
        os.kill(pid, signal.SIGKILL)

        assert run_.ended() == 1


def test_a_failed_migration_stops_the_run_with_its_log(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_table(sample)
    (sample / "migrations" / "versions" / "0002_broken.py").write_text(
        'revision = "0002"\ndown_revision = "0001"\n\n\ndef upgrade() -> None:\n'
        '    raise RuntimeError("this migration is broken")\n'
    )
    with running(sample) as run_:
        assert run_.ended() == 1

    output = capsys.readouterr().out
    assert "the migrations failed" in output
    assert "this migration is broken" in output


def test_a_server_that_cannot_start_stops_the_run_with_the_reason(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_table(sample)
    (sample / ".run" / "postgres").mkdir(parents=True)
    (sample / ".run" / "postgres" / "stray.txt").write_text("not a cluster")
    with running(sample) as run_:
        assert run_.ended() == 1

    assert "RuntimeError" in capsys.readouterr().out


def test_a_stop_during_the_start_stops_what_had_started(sample: Path) -> None:
    write_table(sample)
    environ = {**os.environ, "PORT": str(free_port())}
    stop = Stop()
    stop.set()  # already asked for: the run stops after its first step

    assert run(sample, environ, stop) == 0
    assert (sample / ".run" / "postgres").exists()
    assert not (sample / ".run" / "logs" / "migrations.log").exists()


def test_a_stop_ends_the_migrations_and_the_wait_for_readiness(sample: Path) -> None:
    stop = Stop()
    stop.set()
    config = read_config(sample)

    migrated = _migrate(sample, dict(os.environ), sample / "migrations.log", stop)
    runner = _Runner(sample, config, {**os.environ, "SAMPLE_DATABASE_URL": "unused"}, stop)
    runner.logs.mkdir(parents=True)
    with ExitStack() as stack:
        became_ready = runner.start_service(stack, free_port())

    assert migrated is False
    assert became_ready is False


def test_a_wait_gives_up_after_its_timeout() -> None:
    with pytest.raises(StandaloneError, match="gave up after 0 s"):
        _wait(lambda: False, stop=Stop(), timeout=0, failed=lambda: None)


def test_main_refuses_a_bad_environment_and_restores_the_signal_handlers(
    sample: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    handlers = {
        sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    monkeypatch.chdir(sample)
    monkeypatch.setenv("PORT", "not-a-port")

    assert main() == 2
    assert "PORT='not-a-port' is no TCP port number" in capsys.readouterr().out
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers
