"""Run the whole fleet locally: PostgreSQL, NATS, migrations, the services, the gateway, Prometheus.

    python scripts/fleet.py up     # start, wait until healthy, print the URLs; Ctrl-C stops all
    python scripts/fleet.py down   # stop a fleet left running (or what a killed runner left)

PostgreSQL runs from the local server binaries with its data in ``.fleet/pgdata`` (kept across
restarts; see ``fleet_postgres.py``); NATS with JetStream runs from Debian's ``nats-server`` with
its store in ``.fleet/nats`` (kept too; see ``fleet_nats.py``), and the fleet's streams are created
on it before the services start, each of which gets ``NATS_URL``. Prometheus (Debian's) scrapes
every service's ``/metrics`` and evaluates the SLO rules of ``observability/``, its TSDB in
``.fleet/prometheus`` (kept too; see ``fleet_prometheus.py``). The services and nginx run under
``fleet_supervisor.py``, which starts one that exits again (after a backoff; PostgreSQL, NATS and
Prometheus too) and stops them all when this process gets SIGINT/SIGTERM; then Prometheus stops,
then NATS, and PostgreSQL last. They write straight to
this process's stdout/stderr: JSON lines naming their ``service``; the runner's own lines read
``HH:MM:SS fleet | ...``. On an empty catalog the first ``up`` loads the demo catalog
(``scripts/demo-catalog.json``, see ``demo_catalog.py``). Once the fleet is ready it prints the
gateway URL, the other addresses, the admin login and a few ``curl`` commands to try.

Variables, all optional: FLEET_DATA_DIR (``.fleet``), GATEWAY_PORT (8080), USER_SERVICE_PORT,
CATALOG_SERVICE_PORT, ORDER_SERVICE_PORT, CHAT_SERVICE_PORT (8001..8004), FLEET_PG_PORT (15432),
FLEET_NATS_PORT (4222), FLEET_PROMETHEUS_PORT (9090), FLEET_ADMIN_EMAIL (``admin@example.com``),
FLEET_ADMIN_PASSWORD (else one generated once into ``<data>/secrets.json``; it sets the password
of an admin account created from now on, not of one that exists), FLEET_READY_TIMEOUT (90 s),
FLEET_REPLICAS (1: the number of processes of each service; replica k > 1 listens on the
service's port + 100 * (k - 1), and the gateway spreads requests over them all; ports that
would give two listeners one port are refused).
The whole environment passes through to every process, so the services' own variables work too:
OPENAI_API_KEY, OPENAI_BASE_URL, CHAT_MODEL and EMBEDDING_MODEL for chat-llm-service, for example,
and the OpenTelemetry SDK's OTEL_EXPORTER_OTLP_ENDPOINT (where the spans go; unset: nowhere),
OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG; only OTEL_SERVICE_NAME is each service's own name.

The parts (``FleetConfig``, ``running_postgres`` from ``fleet_postgres.py``, ``running_nats`` and
``create_streams`` from ``fleet_nats.py``, ``running_prometheus`` from ``fleet_prometheus.py``,
``prepare_databases``, ``local_secrets``, ``service_env``, ``service_command``) can be imported,
so that a test can run some of the services as child processes of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_urlsafe

import demo_catalog
from fleet_nats import NatsError, create_streams, running_nats
from fleet_postgres import PostgresError, psql, running_postgres, say
from fleet_prometheus import PrometheusError, running_prometheus
from fleet_supervisor import Ledger, Supervisor, say_line, signals_held, start_time

__all__ = [
    "CATALOG",
    "CHAT",
    "ORDERS",
    "SERVICES",
    "USERS",
    "FleetConfig",
    "FleetError",
    "Service",
    "answers",
    "create_streams",
    "local_secrets",
    "prepare_databases",
    "running_nats",
    "running_postgres",
    "running_prometheus",
    "service_command",
    "service_env",
    "tracing_summary",
]

ROOT = Path(__file__).resolve().parent.parent
# The OpenTelemetry SDK's sampler when OTEL_TRACES_SAMPLER is unset, and the samplers that read
# OTEL_TRACES_SAMPLER_ARG as their ratio.
DEFAULT_SAMPLER = "parentbased_always_on"
# Replica k (from 1) of a service listens on its port + REPLICA_PORT_STEP * (k - 1).
REPLICA_PORT_STEP = 100
MAX_REPLICAS = 8
RATIO_SAMPLERS = frozenset({"traceidratio", "parentbased_traceidratio"})


class FleetError(Exception):
    """Something that stops the runner; ``main`` prints it as ``fleet: <message>``."""


@dataclass(frozen=True)
class Service:
    """One of the four services: its folder, settings prefix, database and port variable."""

    name: str
    prefix: str
    database: str
    port_variable: str
    default_port: int

    @property
    def workdir(self) -> Path:
        return ROOT / self.name / "src"

    @property
    def bin(self) -> Path:
        """Its runtime venv's ``bin/`` (``make venv-run``): the runtime lock only, as its image
        has it; the suites' venv adds test tools (httpx imports its command line, rich and
        pygments with it, when rich is there: 4.5 MiB and about 25 ms of every start)."""
        return self.workdir / ".venv-run" / "bin"


USERS = Service("user-service", "USERS_", "users", "USER_SERVICE_PORT", 8001)
CATALOG = Service("product-catalog-service", "CATALOG_", "catalog", "CATALOG_SERVICE_PORT", 8002)
ORDERS = Service("order-processing-service", "ORDERS_", "orders", "ORDER_SERVICE_PORT", 8003)
CHAT = Service("chat-llm-service", "CHAT_", "chat", "CHAT_SERVICE_PORT", 8004)
SERVICES = (USERS, CATALOG, ORDERS, CHAT)


@dataclass(frozen=True)
class FleetConfig:
    """Where the fleet keeps its data and which ports it uses (``from_environ`` reads them)."""

    data_dir: Path
    service_ports: Mapping[str, int]
    gateway_port: int = 8080
    # Below Linux's ephemeral ports (32768-60999), where an outgoing connection's local end
    # could hold it, and below the ports the tests hand out (20000 up to that range).
    pg_port: int = 15432
    nats_port: int = 4222
    prometheus_port: int = 9090
    admin_email: str = "admin@example.com"
    # FLEET_ADMIN_PASSWORD; None: the password generated once into the data folder.
    admin_password: str | None = None
    ready_timeout: float = 90.0
    # FLEET_REPLICAS: processes of each service, side by side behind the gateway.
    replicas: int = 1
    # What every process of the fleet inherits (OPENAI_API_KEY, CHAT_MODEL, ... pass through).
    environ: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> FleetConfig:
        """The configuration ``make up`` documents: FLEET_DATA_DIR, the *_PORT variables, ..."""
        try:
            ports = {s.name: int(environ.get(s.port_variable, s.default_port)) for s in SERVICES}
            return cls(
                data_dir=Path(environ.get("FLEET_DATA_DIR", ROOT / ".fleet")).resolve(),
                service_ports=ports,
                gateway_port=int(environ.get("GATEWAY_PORT", "8080")),
                pg_port=int(environ.get("FLEET_PG_PORT", "15432")),
                nats_port=int(environ.get("FLEET_NATS_PORT", "4222")),
                prometheus_port=int(environ.get("FLEET_PROMETHEUS_PORT", "9090")),
                admin_email=environ.get("FLEET_ADMIN_EMAIL") or "admin@example.com",
                admin_password=environ.get("FLEET_ADMIN_PASSWORD") or None,
                ready_timeout=float(environ.get("FLEET_READY_TIMEOUT", "90")),
                replicas=_replicas(environ.get("FLEET_REPLICAS", "1")),
                environ=dict(environ),
            )
        except ValueError as exc:
            raise FleetError(f"invalid port or timeout in the environment: {exc}") from None

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "run" / "fleet.pid"

    @property
    def runner_pid(self) -> int:
        """The pid the runner wrote in its pid file (0 when there is none, or it is empty)."""
        if not self.pid_file.exists():
            return 0
        return int(self.pid_file.read_text().strip() or 0)

    @property
    def ledger(self) -> Ledger:
        """Every process the runner started (what ``down`` stops if the runner was killed)."""
        return Ledger(self.data_dir / "run" / "processes")

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    def ports_by_variable(self) -> dict[str, int]:
        """Every port the fleet listens on, by the variable that sets it (``GATEWAY_PORT``, ...;
        a replica's: ``CATALOG_SERVICE_PORT + 100``)."""
        replicas = {
            _port_label(service, replica): self.port(service, replica)
            for service in SERVICES
            for replica in range(self.replicas)
        }
        return {
            "GATEWAY_PORT": self.gateway_port,
            **replicas,
            "FLEET_PG_PORT": self.pg_port,
            "FLEET_NATS_PORT": self.nats_port,
            "FLEET_PROMETHEUS_PORT": self.prometheus_port,
        }

    def port(self, service: Service, replica: int = 0) -> int:
        """The port of a service's replica (from 0: the first listens on the service's port)."""
        return self.service_ports[service.name] + REPLICA_PORT_STEP * replica

    def url(self, service: Service, replica: int = 0) -> str:
        return f"http://127.0.0.1:{self.port(service, replica)}"

    def peer_url(self, service: Service, path: str = "") -> str:
        """How the other services reach ``service`` (at ``path``): every replica's URL,
        comma-separated (their clients call each in turn, the next when one refuses)."""
        return ",".join(self.url(service, replica) + path for replica in range(self.replicas))

    def replica_name(self, service: Service, replica: int) -> str:
        """What the runner's lines call a replica: the service's name, ``-2`` and on with more."""
        return service.name if self.replicas == 1 else f"{service.name}-{replica + 1}"


def _replicas(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_REPLICAS:
        raise FleetError(
            f"FLEET_REPLICAS={value!r}: give a number of replicas, 1 to {MAX_REPLICAS}"
        )
    return int(value)


def _port_label(service: Service, replica: int) -> str:
    step = REPLICA_PORT_STEP * replica
    return service.port_variable + (f" + {step}" if step else "")


# --- databases ----------------------------------------------------------------------------------


def database_url(config: FleetConfig, service: Service) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{config.pg_port}/{service.database}"


def prepare_databases(
    config: FleetConfig,
    bindir: Path,
    secrets: Mapping[str, str],
    services: Iterable[Service] = SERVICES,
) -> None:
    """Create each service's database when missing, then migrate them all at once."""
    services = tuple(services)
    for service in services:
        query = f"SELECT 1 FROM pg_database WHERE datname = '{service.database}'"  # noqa: S608
        exists = psql(bindir, config.pg_port, query)
        if not exists:
            psql(bindir, config.pg_port, f'CREATE DATABASE "{service.database}"')
    migrations = {
        service: subprocess.Popen(
            [str(service.bin / "alembic"), "upgrade", "head"],
            cwd=service.workdir,
            env={**config.environ, **service_env(config, service, secrets)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for service in services
    }
    failed = []
    try:
        for service, process in migrations.items():
            output, _ = process.communicate()
            if process.returncode != 0:
                sys.stdout.write(output.decode(errors="replace"))
                failed.append(service.name)
            else:
                say(f"{service.name}: database '{service.database}' migrated")
    except BaseException:  # Ctrl-C or 'make down' while migrating: leave nothing running
        for process in migrations.values():
            process.kill()
            process.wait()
        raise
    if failed:
        raise FleetError(f"migrating {', '.join(failed)} failed")


# --- the services and the gateway -------------------------------------------------------------


def local_secrets(config: FleetConfig) -> dict[str, str]:
    """Secrets made once for this data folder, kept in ``<data>/secrets.json`` (0600).

    FLEET_ADMIN_PASSWORD, when set, wins over the generated admin password.
    """
    path = config.data_dir / "secrets.json"
    secrets: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    for name in ("admin_password", "orders_client_secret"):
        secrets.setdefault(name, token_urlsafe(18))
    if "orders_client_secret_hash" not in secrets:
        secrets["orders_client_secret_hash"] = subprocess.run(
            [str(USERS.bin / "python"), "-m", "app.security.hash_secret"],
            input=secrets["orders_client_secret"],
            cwd=USERS.workdir,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    path.touch(mode=0o600)
    path.write_text(json.dumps(secrets, indent=2))
    if config.admin_password:
        secrets["admin_password"] = config.admin_password
    return secrets


def service_env(
    config: FleetConfig, service: Service, secrets: Mapping[str, str]
) -> dict[str, str]:
    """The environment of one service: its database, the broker, its peers, its secrets."""
    prefix = service.prefix
    env = {
        f"{prefix}DATABASE_URL": database_url(config, service),
        # Unprefixed: every service reads the same variable for the one broker.
        "NATS_URL": config.nats_url,
        f"{prefix}JWKS_URL": config.peer_url(USERS, "/auth/jwks"),
        f"{prefix}ENVIRONMENT": "development",
        # Each service's spans under its own name, whatever OTEL_SERVICE_NAME the caller exported.
        "OTEL_SERVICE_NAME": service.name,
    }
    if service is USERS:
        env["USERS_SIGNING_KEY_FILE"] = str(
            config.data_dir / "keys" / "user-service-signing-key.pem"
        )
        env["USERS_ADMIN_EMAIL"] = config.admin_email
        env["USERS_ADMIN_PASSWORD"] = secrets["admin_password"]
        env["USERS_SERVICE_CLIENTS"] = json.dumps(
            {"order-processing-service": secrets["orders_client_secret_hash"]}
        )
    elif service is ORDERS:
        env["ORDERS_CATALOG_URL"] = config.peer_url(CATALOG)
        env["ORDERS_USERS_URL"] = config.peer_url(USERS)
        env["ORDERS_SERVICE_CLIENT_ID"] = "order-processing-service"
        env["ORDERS_SERVICE_CLIENT_SECRET"] = secrets["orders_client_secret"]
    elif service is CHAT:
        env["CHAT_CATALOG_URL"] = config.peer_url(CATALOG)
        env["CHAT_ORDERS_URL"] = config.peer_url(ORDERS)
    return env


def service_command(config: FleetConfig, service: Service, replica: int = 0) -> list[str]:
    """The uvicorn command line of one service's replica (run it with ``cwd=service.workdir``)."""
    uvicorn = str(service.bin / "uvicorn")
    return [
        uvicorn,
        "app.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(config.port(service, replica)),
        # Longer than the gateway keeps an idle upstream connection (60 s), so that nginx closes
        # it first, as in each service's Dockerfile.
        "--timeout-keep-alive",
        "75",
        # On SIGTERM it stops accepting and finishes the requests in flight for up to 8 s, within
        # the 10 s the supervisor gives a process before SIGKILL (the image: 20 s within 35 s).
        "--timeout-graceful-shutdown",
        "8",
    ]


def gateway_env(config: FleetConfig) -> dict[str, str]:
    """The gateway's listen address, and every replica of each service as a server of its group."""
    env = {"GATEWAY_LISTEN": f"127.0.0.1:{config.gateway_port}"}
    names = ("USER", "CATALOG", "ORDER", "CHAT")
    for name, service in zip(names, SERVICES, strict=True):
        env[f"{name}_SERVICE_UPSTREAM"] = ",".join(
            f"127.0.0.1:{config.port(service, replica)}" for replica in range(config.replicas)
        )
    return env


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 right now."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def readiness_urls(config: FleetConfig, services: Iterable[Service] = SERVICES) -> list[str]:
    """The ``/ready`` of every replica of ``services``."""
    return [
        f"{config.url(service, replica)}/ready"
        for service in services
        for replica in range(config.replicas)
    ]


def wait_until_ready(urls: list[str], *, timeout: float) -> bool:
    """Poll until every URL answers 200 (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not all(answers(url) for url in urls):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def llm_summary(config: FleetConfig) -> str:
    """Which OpenAI-compatible API the chat service will use (never the key itself)."""
    env = config.environ
    base_url = env.get("OPENAI_BASE_URL") or env.get("CHAT_OPENAI_BASE_URL")
    has_key = bool(env.get("OPENAI_API_KEY") or env.get("CHAT_OPENAI_API_KEY"))
    model = env.get("CHAT_MODEL") or "gpt-4o-mini"
    if not base_url and not has_key:
        return (
            "chat: no LLM configured, /api/chat answers 503 (set OPENAI_API_KEY or OPENAI_BASE_URL)"
        )
    where = base_url or "https://api.openai.com/v1"
    return f"chat: model {model} at {where}" + ("" if has_key else " (no OPENAI_API_KEY)")


def tracing_summary(config: FleetConfig) -> str:
    """Where the services' spans go, from the OTEL_* variables their OpenTelemetry SDK reads."""
    env = config.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "tracing: off (OTEL_SDK_DISABLED=true), no spans are made"
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not endpoint:
        return (
            "tracing: exports nothing until OTEL_EXPORTER_OTLP_ENDPOINT is set "
            "(an OTLP/HTTP receiver, e.g. http://127.0.0.1:4318)"
        )
    sampler = env.get("OTEL_TRACES_SAMPLER", "").strip() or DEFAULT_SAMPLER
    if sampler.lower() in RATIO_SAMPLERS:
        # The SDK samples everything when a ratio sampler is given no argument.
        sampler += f" {env.get('OTEL_TRACES_SAMPLER_ARG', '').strip() or '1.0'}"
    return f"tracing: spans to {endpoint} over OTLP/HTTP, sampler {sampler}"


def announce_ready(
    config: FleetConfig, admin_password: str, say_line: Callable[[str], None]
) -> None:
    """Load the demo catalog when the catalog is empty, then print how to use the fleet."""
    for line in demo_catalog.ensure_loaded(
        gateway_url=config.gateway_url,
        admin_email=config.admin_email,
        admin_password=admin_password,
        state_file=config.data_dir / "demo-catalog.state.json",
    ):
        say_line(line)
    base = config.gateway_url
    examples = demo_catalog.example_commands(base, demo_catalog.first_product_id(base))
    say_line("the fleet is ready")
    say_line(f"  gateway   {base}   (the only entry point for clients)")
    say_line(f"  API reference  {base}/api/docs   (the OpenAPI document: {base}/api/openapi.json)")
    for service in SERVICES:
        urls = " ".join(config.url(service, replica) for replica in range(config.replicas))
        say_line(f"  {service.name:<25} {urls}  (direct, not for clients)")
    say_line(f"  {'NATS (JetStream)':<25} {config.nats_url}  (events between services)")
    say_line(f"  {'Prometheus':<25} {config.prometheus_url}  (metrics, SLO rules and alerts)")
    login = f"{config.admin_email} / {admin_password}"
    say_line(f"  admin login: {login}  (FLEET_ADMIN_EMAIL, FLEET_ADMIN_PASSWORD)")
    say_line(f"  {llm_summary(config)}")
    say_line(f"  {tracing_summary(config)}")
    say_line("  try:")
    for command in examples:
        say_line(f"    $ {command}")
    say_line("press Ctrl-C to stop everything (or run 'make down' in another terminal)")


def watch_readiness(
    supervisor: Supervisor, config: FleetConfig, gave_up: threading.Event, admin_password: str
) -> None:
    """Wait until the gateway and every service answer, then announce; stop the fleet if never."""

    def fleet_line(text: str) -> None:
        say_line("fleet", text)

    urls = [f"{config.gateway_url}/healthz", *readiness_urls(config)]
    if not wait_until_ready(urls, timeout=config.ready_timeout):
        fleet_line(f"the fleet did not become ready within {config.ready_timeout:g} s; stopping it")
        gave_up.set()
        supervisor.request_stop()
        return
    try:
        announce_ready(config, admin_password, fleet_line)
    except Exception as exc:  # the fleet runs on; the developer sees why
        fleet_line(f"the fleet runs, but announcing it failed: {exc!r}")


def check_ports_distinct(config: FleetConfig) -> None:
    """Refuse two listeners on one port (a replica's port is its service's + 100 * (k - 1)): the
    one that binds second would fail at every start, and the fleet would never be ready."""
    listeners: dict[int, list[str]] = {}
    for variable, port in config.ports_by_variable().items():
        listeners.setdefault(port, []).append(variable)
    shared = [f"{port} ({', '.join(names)})" for port, names in listeners.items() if len(names) > 1]
    if shared:
        apart = REPLICA_PORT_STEP * config.replicas
        replicas = f" ({config.replicas} replicas: ports {apart} or more apart)"
        raise FleetError(
            f"port(s) {'; '.join(shared)} given to more than one listener; "
            f"give each its own{replicas if config.replicas > 1 else ''}."
        )


def check_not_running(config: FleetConfig) -> None:
    pid = config.runner_pid
    if running(pid):
        raise FleetError(f"already running (pid {pid}); stop it with 'make down' first.")
    config.pid_file.unlink(missing_ok=True)
    left = config.ledger.running()
    if left:
        raise FleetError(
            f"{len(left)} process(es) of an earlier fleet still running, its runner gone (pids "
            f"{', '.join(map(str, sorted(left)))}); stop them with 'make down' first."
        )
    config.ledger.clear()
    busy = [
        f"{port} ({variable})"
        for variable, port in config.ports_by_variable().items()
        if in_use(port)
    ]
    if busy:
        raise FleetError(
            f"port(s) {', '.join(busy)} already in use on 127.0.0.1; "
            "stop what listens there or set the variable to another port."
        )


def in_use(port: int) -> bool:
    """Whether a server could not bind ``port`` on 127.0.0.1 now.

    Binds as the servers do (SO_REUSEADDR): a listener there, or a connection whose local end
    is that port (one made without SO_REUSEADDR), makes it fail; a connection of a stopped
    fleet lingering in TIME_WAIT does not, as it does not stop the servers either.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def run_fleet(config: FleetConfig, secrets: Mapping[str, str], supervisor: Supervisor) -> int:
    """The four services and nginx, kept running until we are asked to stop."""
    for service in SERVICES:
        for replica in range(config.replicas):
            supervisor.add(
                config.replica_name(service, replica),
                service_command(config, service, replica),
                env={**config.environ, **service_env(config, service, secrets)},
                cwd=service.workdir,
            )
    supervisor.add(
        "gateway",
        [sys.executable, "scripts/run_local.py", "--workdir", str(config.data_dir / "gateway")],
        env={**config.environ, **gateway_env(config)},
        cwd=ROOT / "api-gateway-service",
    )
    gave_up = threading.Event()
    watcher = threading.Thread(
        target=watch_readiness,
        args=(supervisor, config, gave_up, secrets["admin_password"]),
        daemon=True,
    )
    # Started with the signals held, it keeps them blocked: a SIGTERM sent to the runner is then
    # always delivered to the main thread, never to this one while the main thread holds it back.
    with signals_held():
        watcher.start()
    supervisor.run()
    # Stopped on request (Ctrl-C, SIGTERM, make down), or because it never became ready.
    return 1 if gave_up.is_set() else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def up(config: FleetConfig) -> int:
    check_ports_distinct(config)
    check_not_running(config)
    # Ctrl-C (SIGINT) and 'make down' (SIGTERM) before the supervisor runs unwind the start, so
    # NATS and PostgreSQL stop too; the supervisor installs its own handlers while it runs the
    # services. SIGINT is set here too, not left as inherited: a runner started as a background
    # job (`make up &`) inherits it ignored, and Python then keeps it so; a SIGINT during the
    # start was lost, and the fleet came up anyway.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    for sub in ("run", "logs", "gateway", "keys"):
        (config.data_dir / sub).mkdir(parents=True, exist_ok=True)
    config.pid_file.write_text(str(os.getpid()))
    # Keeps the services, the gateway, PostgreSQL, NATS and Prometheus running while the fleet
    # runs: one that exits is started again. Each process started is written down in the
    # ledger, for a 'make down' after this runner was killed (SIGKILL stops none of them).
    supervisor = Supervisor(ledger=config.ledger)
    try:
        # Left in reverse: the services first (run_fleet), then Prometheus (it sees them stop),
        # then NATS, then PostgreSQL.
        with (
            running_postgres(config.data_dir, config.pg_port, supervisor=supervisor) as bindir,
            running_nats(config.data_dir, config.nats_port, supervisor=supervisor) as nats_url,
        ):
            secrets = local_secrets(config)
            create_streams(CATALOG.bin / "python", nats_url)
            prepare_databases(config, bindir, secrets)
            # Prometheus is ready about 0.2 s after its start, before the services are; their
            # first scrapes may find them still starting (up == 0 for one interval).
            service_ports = {
                service.port_variable: [config.port(service, r) for r in range(config.replicas)]
                for service in SERVICES
            }
            with running_prometheus(
                config.data_dir, config.prometheus_port, service_ports, supervisor=supervisor
            ):
                return run_fleet(config, secrets, supervisor)
    finally:
        config.ledger.clear()
        config.pid_file.unlink(missing_ok=True)


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent counts as stopped)."""
    return start_time(pid) is not None


def stop_left_behind(ledger: Ledger, timeout: float = 30) -> int:
    """Stop the processes a killed runner left running (as the runner would: the services,
    the gateway, NATS and Prometheus, then PostgreSQL, its fast shutdown); SIGKILL after
    ``timeout`` seconds. How many there were."""
    left = ledger.running()  # read again below: a pid counts while it names the same process
    last = {pid: sig for pid, sig in left.items() if sig == signal.SIGINT}
    for wave in ({pid: sig for pid, sig in left.items() if pid not in last}, last):
        for pid, sig in wave.items():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while wave.keys() & ledger.running().keys() and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in wave.keys() & ledger.running().keys():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    ledger.clear()
    return len(left)


def down(config: FleetConfig) -> int:
    pid_file = config.pid_file
    pid = config.runner_pid
    if not running(pid):
        pid_file.unlink(missing_ok=True)
        left = stop_left_behind(config.ledger)
        say(
            f"stopped {left} process(es) an earlier fleet left running (its runner was killed)"
            if left
            else "no fleet is running"
        )
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while running(pid) and pid_file.exists():
        if time.monotonic() > deadline:
            say(f"the fleet (pid {pid}) did not stop within 60 s")
            return 1
        time.sleep(0.2)
    # The runner removes its pid file last, after NATS and PostgreSQL have stopped.
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    say("stopped")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=["up", "down"])
    args = parser.parse_args()
    try:
        config = FleetConfig.from_environ(os.environ)
        return up(config) if args.command == "up" else down(config)
    except (FleetError, PostgresError, NatsError, PrometheusError) as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        say("stopped before the fleet was up")
        return 130


if __name__ == "__main__":
    sys.exit(main())
