"""Run one service alone: ``python -m common_libs.testing.standalone`` in its ``src/``.

What ``make run`` runs. It reads the table ``[tool.common-libs.standalone]`` of ``pyproject.toml``
and starts, each child process in a process group of its own, every log under ``.run/logs/``:

1. PostgreSQL, its cluster kept in ``.run/postgres`` (:func:`~common_libs.testing.postgres.
   persistent_postgres`), the service's database created when missing: ``{prefix}DATABASE_URL``;
2. NATS with JetStream (``nats = true``), its store kept in ``.run/nats``, the fleet's streams
   created: ``NATS_URL``;
3. the migrations (``alembic upgrade head``);
4. stand-ins for the neighbours, served in this process by uvicorn on free ports: one per consumer
   pact of the ``stand-ins`` table (its URL in the setting named there), the token stand-in
   (``tokens = true``: ``{prefix}JWKS_URL``), the LLM test server (``llm = true``:
   ``{prefix}OPENAI_BASE_URL``, given the rules of the file ``llm-rules`` names); and the
   ``environment`` table's settings (a variable the caller set wins);
5. the service under uvicorn on ``PORT`` (else the table's ``port``), until ``GET /ready`` answers.

Then it prints what runs (lines starting ``standalone | ``), writes ``.run/run.json`` (removed
when it stops) and waits for SIGINT (Ctrl-C), SIGTERM or SIGHUP, which stop the service, the
stand-ins, NATS and PostgreSQL in that order (so does the service exiting on its own).
``NEIGHBOURS=fleet`` runs the service against a fleet started with ``make up`` instead: no
stand-ins, the fleet's NATS (``NATS_URL``, by default ``nats://127.0.0.1:4222``), the service's
own neighbour settings; its own database as above. common-libs' README, "Running a service alone",
has the table's keys.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any, Literal

import httpx
import nats
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common_libs.events.streams import ensure_streams
from common_libs.testing.nats import persistent_nats
from common_libs.testing.postgres import ensure_database, persistent_postgres
from common_libs.testing.processes import ServerProcess, UvicornThread
from common_libs.testing.stand_ins import pact_stand_in, set_llm_rules, token_stand_in
from common_libs.testing.tokens import TestTokenIssuer

__all__ = ["StandaloneConfig", "StandaloneError", "Stop", "main", "read_config", "run"]

RUN_DIR = ".run"
READY_TIMEOUT_SECONDS = 60.0
MIGRATION_TIMEOUT_SECONDS = 300.0
_POLL_SECONDS = 0.1
_FLEET_NATS_URL = "nats://127.0.0.1:4222"
_LOG_TAIL_LINES = 40
# SIGHUP too: a closed terminal would otherwise end the runner and leave its children running.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
Neighbours = Literal["stand-ins", "fleet"]


class StandaloneError(Exception):
    """The run cannot go on; the message says why and what to do."""


class Stop:
    """Whether a stop was asked for: set by the signal handlers (or by a test), polled by
    :func:`run` between and during its steps (a handler that only sets a flag can never land
    between a child's start and the moment its handle is kept)."""

    def __init__(self) -> None:
        self.requested = False

    def set(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Ask for the stop (its signature fits ``signal.signal``)."""
        self.requested = True


class StandaloneConfig(BaseModel):
    """The table ``[tool.common-libs.standalone]`` of a service's ``pyproject.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    app: str = Field(pattern=r"^[\w.]+:\w+$")
    name: str = Field(min_length=1)
    prefix: str = Field(pattern=r"^[A-Z][A-Z0-9]*_$")
    database: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    port: int = Field(ge=1, le=65535)
    nats: bool = False
    tokens: bool = False
    llm: bool = False
    llm_rules: str | None = Field(default=None, alias="llm-rules")
    stand_ins: dict[str, str] = Field(default_factory=dict, alias="stand-ins")
    environment: dict[str, str] = Field(default_factory=dict)

    @field_validator("stand_ins")
    @classmethod
    def _settings_are_names(cls, stand_ins: dict[str, str]) -> dict[str, str]:
        for setting in stand_ins:
            if not setting.replace("_", "").isalnum() or not setting.islower():
                raise ValueError(f"{setting!r} is no setting name (lower case, without prefix)")
        return stand_ins

    @field_validator("environment")
    @classmethod
    def _variables_are_names(cls, environment: dict[str, str]) -> dict[str, str]:
        for variable in environment:
            if not variable.replace("_", "").isalnum() or not variable.isupper():
                raise ValueError(f"{variable!r} is no variable name (upper case, without prefix)")
        return environment


def read_config(src_dir: Path) -> StandaloneConfig:
    """The standalone table of ``src_dir/pyproject.toml``; StandaloneError when it is missing or
    wrong, saying which key."""
    pyproject = src_dir / "pyproject.toml"
    try:
        document = tomllib.loads(pyproject.read_text())
    except FileNotFoundError:
        raise StandaloneError(f"{pyproject} not found: run this in a service's src/") from None
    except tomllib.TOMLDecodeError as error:
        raise StandaloneError(f"{pyproject} is no valid TOML: {error}") from None
    table = document.get("tool", {}).get("common-libs", {}).get("standalone")
    if not isinstance(table, dict):
        raise StandaloneError(
            f"{pyproject} has no [tool.common-libs.standalone] table "
            "(common-libs' README, 'Running a service alone', says what goes in it)"
        )
    try:
        return StandaloneConfig.model_validate(table)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, item['loc'])) or 'table'}: {item['msg']}"
            for item in error.errors()
        )
        raise StandaloneError(f"[tool.common-libs.standalone] of {pyproject}: {problems}") from None


def neighbours(environ: Mapping[str, str]) -> Neighbours:
    """``NEIGHBOURS``: unset (stand-ins) or ``fleet``; any other value is refused."""
    value = environ.get("NEIGHBOURS", "")
    if value == "":
        return "stand-ins"
    if value == "fleet":
        return "fleet"
    raise StandaloneError(
        f"NEIGHBOURS={value!r} is not understood: leave it unset to run against stand-ins "
        "built from the pacts, or set NEIGHBOURS=fleet to use a running fleet ('make up')"
    )


def service_port(config: StandaloneConfig, environ: Mapping[str, str]) -> int:
    """``PORT``, else the table's ``port``; refused when it is no port or is in use."""
    raw = environ.get("PORT", "") or str(config.port)
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise StandaloneError(f"PORT={raw!r} is no TCP port number (1-65535)")
    port = int(raw)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As uvicorn binds: a port some connection recently left (TIME_WAIT) is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise StandaloneError(
                f"port {port} on 127.0.0.1 is in use (is the service already running?); "
                "choose another one with PORT, e.g. 'make run PORT=18000'"
            ) from None
    return port


def _say(message: str) -> None:
    print(f"standalone | {message}", flush=True)


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait(
    condition: Callable[[], bool], *, stop: Stop, timeout: float, failed: Callable[[], str | None]
) -> bool:
    """Poll ``condition`` until true (True), a stop is asked for (False), ``failed`` says why it
    never will, or ``timeout`` passes (both StandaloneError)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if stop.requested:
            return False
        reason = failed()
        if reason is not None:
            raise StandaloneError(reason)
        if time.monotonic() > deadline:
            raise StandaloneError(f"gave up after {timeout:g} s")
        time.sleep(_POLL_SECONDS)
    return True


def _migrate(src_dir: Path, env: Mapping[str, str], log_path: Path, stop: Stop) -> bool:
    """``alembic upgrade head`` in ``src_dir``; False when a stop interrupted it."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=src_dir,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    try:
        finished = _wait(
            lambda: process.poll() is not None,
            stop=stop,
            timeout=MIGRATION_TIMEOUT_SECONDS,
            failed=lambda: None,
        )
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait()
    if finished and process.returncode != 0:
        raise StandaloneError(f"the migrations failed ({log_path}):\n{_tail(log_path)}")
    return finished


def _create_streams(url: str) -> None:
    async def create() -> None:
        connection = await nats.connect(
            url, connect_timeout=5, allow_reconnect=False, max_reconnect_attempts=1
        )
        try:
            await ensure_streams(connection.jetstream())
        finally:
            await connection.close()

    asyncio.run(create())


def _logged(app: ASGIApp, log: IO[str]) -> ASGIApp:
    """``app``, writing one line per request (time, method, path without query, status)."""

    async def logged_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        status = 0

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await app(scope, receive, send_and_note)
        log.write(f"{datetime.now(UTC):%H:%M:%S} {scope['method']} {scope['path']} {status}\n")
        log.flush()

    return logged_app


@contextmanager
def _serving(app: ASGIApp, log_path: Path) -> Iterator[str]:
    """``app`` under uvicorn in a thread of this process on a free port; yields its URL."""
    with log_path.open("a") as log, UvicornThread(_logged(app, log), lifespan="on") as server:
        yield server.url


def _interactions(pact: Path) -> str:
    """How many interactions the pact holds, in words."""
    document: dict[str, Any] = json.loads(pact.read_text())
    count = len(document.get("interactions", []))
    return f"{count} interaction" + "s" * (count != 1)


class _Runner:
    """One run: what it started (on ``stack``, stopped in reverse order) and what it prints."""

    def __init__(
        self, src_dir: Path, config: StandaloneConfig, environ: Mapping[str, str], stop: Stop
    ) -> None:
        self.src_dir = src_dir
        self.config = config
        self.stop = stop
        self.env = dict(environ)
        self.run_dir = src_dir / RUN_DIR
        self.logs = self.run_dir / "logs"
        self.facts: dict[str, Any] = {
            "service": {"name": config.name, "url": None},
            "database_url": None,
            "nats_url": None,
            "stand_ins": {},
            "tokens_url": None,
            "llm_url": None,
        }
        self.lines: list[str] = []

    def setting(self, name: str, value: str) -> None:
        self.env[self.config.prefix + name.upper()] = value

    def start_postgres(self, stack: ExitStack) -> None:
        server = stack.enter_context(
            persistent_postgres(self.run_dir / "postgres", log_path=self.logs / "postgres.log")
        )
        url = ensure_database(server, self.config.database)
        self.setting("database_url", url)
        self.facts["database_url"] = server.url(self.config.database, driver=None)
        self.lines.append(
            f"database {self.facts['database_url']} (data in {RUN_DIR}/postgres, "
            f"log {RUN_DIR}/logs/postgres.log)"
        )

    def start_nats(self, stack: ExitStack, mode: Neighbours) -> None:
        if mode == "fleet":
            url = self.env.setdefault("NATS_URL", _FLEET_NATS_URL)
            self.lines.append(f"NATS {url} (the fleet's)")
            self.lines.append(
                "neighbours: the fleet's, at the service's own settings (set them to override)"
            )
        elif self.config.nats:
            server = stack.enter_context(
                persistent_nats(self.run_dir / "nats", log_path=self.logs / "nats.log")
            )
            url = server.url
            _create_streams(url)
            self.env["NATS_URL"] = url
            self.lines.append(f"NATS {url} (store in {RUN_DIR}/nats)")
        else:
            return
        self.facts["nats_url"] = url

    def start_stand_ins(self, stack: ExitStack) -> None:
        for setting, pact_name in self.config.stand_ins.items():
            pact = self.src_dir / pact_name
            log_path = self.logs / f"stand-in-{setting}.log"
            url = stack.enter_context(_serving(pact_stand_in(pact), log_path))
            self.setting(setting, url)
            self.facts["stand_ins"][setting] = url
            self.lines.append(
                f"stand-in {self.config.prefix}{setting.upper()}={url} plays {pact_name} "
                f"({_interactions(pact)}; requests in {RUN_DIR}/logs/{log_path.name})"
            )
        if self.config.tokens:
            url = stack.enter_context(
                _serving(token_stand_in(TestTokenIssuer()), self.logs / "stand-in-tokens.log")
            )
            self.setting("jwks_url", f"{url}/auth/jwks")
            self.facts["tokens_url"] = f"{url}/token"
            self.lines.append(
                f"token stand-in {url}/token (a new key each run: tokens do not survive a "
                f"restart): curl -s '{url}/token?role=admin'"
            )
        if self.config.llm:
            from common_libs.testing.llm_server import app as llm_app

            url = stack.enter_context(_serving(llm_app, self.logs / "stand-in-llm.log"))
            self.setting("openai_base_url", f"{url}/v1")
            self.setting("openai_api_key", "standalone-test-server")
            self.facts["llm_url"] = f"{url}/v1"
            rules = ""
            if self.config.llm_rules is not None:
                count = set_llm_rules(url, self.src_dir / self.config.llm_rules)
                rules = f" ({count} rules from {self.config.llm_rules})"
            self.lines.append(f"LLM test server {url}/v1{rules}")
        for variable, value in self.config.environment.items():
            self.env.setdefault(self.config.prefix + variable, value)

    def start_service(self, stack: ExitStack, port: int) -> bool:
        url = f"http://127.0.0.1:{port}"
        self.setting("environment", "development")
        log_path = self.logs / "service.log"
        uvicorn = [sys.executable, "-m", "uvicorn", self.config.app]
        service = ServerProcess(
            [*uvicorn, "--factory", "--host", "127.0.0.1", "--port", str(port)],
            log_path=log_path,
            env=self.env,
            inherit_env=False,
            cwd=self.src_dir,
            own_process_group=True,
        )
        stack.callback(service.stop)  # SIGTERM: uvicorn's graceful stop
        service.start()
        assert service.process is not None
        self.service = process = service.process

        def exited() -> str | None:
            code = process.poll()
            if code is None:
                return None
            return f"the service exited ({code}) before it was ready:\n{_tail(log_path)}"

        try:
            ready = _wait(
                lambda: _ready(url), stop=self.stop, timeout=READY_TIMEOUT_SECONDS, failed=exited
            )
        except StandaloneError as error:
            raise StandaloneError(
                f"{url}/ready did not answer 200: {error}\n{_tail(log_path)}"
            ) from None
        self.facts["service"]["url"] = url
        self.lines.insert(0, f"{self.config.name} ready at {url} (log {RUN_DIR}/logs/service.log)")
        return ready

    def announce(self) -> None:
        for line in self.lines:
            _say(line)
        # Written whole, then renamed: a reader that sees run.json never reads half of it.
        temporary = self.run_dir / "run.json.tmp"
        temporary.write_text(json.dumps(self.facts, indent=2) + "\n")
        temporary.replace(self.run_dir / "run.json")
        _say(f"what runs is in {RUN_DIR}/run.json; Ctrl-C stops it all (the data stays)")

    def serve_until_stopped(self) -> int:
        while not self.stop.requested:
            code = self.service.poll()
            if code is not None:
                _say(f"the service exited ({code}):\n{_tail(self.logs / 'service.log')}")
                return 1
            time.sleep(_POLL_SECONDS)
        return 0


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _check_files(src_dir: Path, config: StandaloneConfig) -> None:
    """The stand-ins' pacts and the LLM rules are there, before anything starts."""
    for setting, pact_name in config.stand_ins.items():
        if not (src_dir / pact_name).is_file():
            raise StandaloneError(
                f"the stand-in for {setting} plays {src_dir / pact_name}, which is missing "
                "(the consumer tests write it)"
            )
    if config.llm_rules is not None and not (src_dir / config.llm_rules).is_file():
        raise StandaloneError(f"llm-rules names {src_dir / config.llm_rules}, which is missing")


def run(src_dir: Path, environ: Mapping[str, str], stop: Stop) -> int:
    """Run the service of ``src_dir`` alone until ``stop`` is set; the exit code (0 when
    stopped, 1 when something failed, 2 when the configuration or environment is refused)."""
    try:
        config = read_config(src_dir)
        mode = neighbours(environ)
        port = service_port(config, environ)
        if mode == "stand-ins":
            _check_files(src_dir, config)
    except StandaloneError as error:
        _say(str(error))
        return 2
    runner = _Runner(src_dir, config, environ, stop)
    runner.logs.mkdir(parents=True, exist_ok=True)
    run_json = runner.run_dir / "run.json"
    run_json.unlink(missing_ok=True)
    _say(
        f"starting {config.name} ({'the fleet' if mode == 'fleet' else 'stand-ins'} as neighbours)"
    )
    try:
        with ExitStack() as stack:
            stack.callback(run_json.unlink, missing_ok=True)
            steps: list[Callable[[], object]] = [
                lambda: runner.start_postgres(stack),
                lambda: runner.start_nats(stack, mode),
                lambda: _migrate(src_dir, runner.env, runner.logs / "migrations.log", stop),
            ]
            if mode == "stand-ins":
                steps.append(lambda: runner.start_stand_ins(stack))
            steps.append(lambda: runner.start_service(stack, port))
            for step in steps:
                if step() is False or stop.requested:
                    return 0
            runner.announce()
            return runner.serve_until_stopped()
    except StandaloneError as error:
        _say(f"stopped: {error}")
        return 1
    except Exception as error:  # a server that would not start: say so, stop the others
        _say(f"stopped: {type(error).__name__}: {error} (the logs are in {runner.logs})")
        return 1
    finally:
        _say("everything it started has stopped")


def main() -> int:
    """``python -m common_libs.testing.standalone``: run the service of the current folder."""
    stop = Stop()
    previous = {signum: signal.signal(signum, stop.set) for signum in _STOP_SIGNALS}
    try:
        return run(Path.cwd(), os.environ, stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":  # pragma: no cover - run as a program by the subprocess tests
    sys.exit(main())
