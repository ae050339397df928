"""Run the whole fleet locally: PostgreSQL, migrations, the four services and the nginx gateway.

    python scripts/fleet.py up     # start, wait until healthy, print the URLs; Ctrl-C stops all
    python scripts/fleet.py down   # stop a fleet left running (by its pid file)

PostgreSQL runs from the local server binaries with its data in ``.fleet/pgdata`` (kept across
restarts). The services and nginx run under honcho, which stops them all when one exits or when
this process gets SIGINT/SIGTERM; PostgreSQL is stopped last.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from secrets import token_urlsafe

from honcho.manager import Manager

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("FLEET_DATA_DIR", ROOT / ".fleet")).resolve()
PID_FILE = DATA / "run" / "fleet.pid"
READY_TIMEOUT = float(os.environ.get("FLEET_READY_TIMEOUT", "90"))


@dataclass(frozen=True)
class Service:
    name: str
    prefix: str
    database: str
    port: int

    @property
    def workdir(self) -> Path:
        return ROOT / self.name / "src"


SERVICES = (
    Service("user-service", "USERS_", "users", int(os.environ.get("USER_SERVICE_PORT", "8001"))),
    Service(
        "product-catalog-service",
        "CATALOG_",
        "catalog",
        int(os.environ.get("CATALOG_SERVICE_PORT", "8002")),
    ),
    Service(
        "order-processing-service",
        "ORDERS_",
        "orders",
        int(os.environ.get("ORDER_SERVICE_PORT", "8003")),
    ),
    Service("chat-llm-service", "CHAT_", "chat", int(os.environ.get("CHAT_SERVICE_PORT", "8004"))),
)
GATEWAY_PORT = int(os.environ.get("GATEWAY_PORT", "8080"))
ADMIN_EMAIL = os.environ.get("FLEET_ADMIN_EMAIL", "admin@example.com")
PG_PORT = int(os.environ.get("FLEET_PG_PORT", "55432"))


def say(message: str) -> None:
    print(f"fleet | {message}", flush=True)


# --- PostgreSQL -------------------------------------------------------------------------------


def postgres_bindir() -> Path:
    """The directory of initdb/postgres/psql: PG_BINDIR, PATH, or Debian's newest version."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        return Path(explicit)
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    if not candidates:
        sys.exit("fleet: PostgreSQL server binaries not found; run 'make up' (it installs them).")
    return Path(candidates[-1]).parent


def server_user() -> str | None:
    """PostgreSQL refuses to run as root; as root it runs as the 'postgres' account."""
    return "postgres" if os.geteuid() == 0 else None


def as_server_user(argv: list[str]) -> list[str]:
    user = server_user()
    return ["runuser", "-u", user, "--", *argv] if user else argv


def postgres_data_dir() -> Path:
    """``.fleet/pgdata``; a symlink to a place the postgres account can reach when it cannot."""
    link = DATA / "pgdata"
    if link.exists() or server_user() is None:
        return link.resolve()
    probe = subprocess.run(as_server_user(["test", "-x", str(DATA)]), check=False)
    if probe.returncode == 0:
        return link
    # The checkout lives where the postgres account cannot enter (a home directory, say):
    # keep the cluster under /var/lib and point .fleet/pgdata at it.
    digest = hashlib.sha256(str(DATA).encode()).hexdigest()[:12]
    target = Path("/var/lib/fleet-postgres") / digest
    target.mkdir(parents=True, exist_ok=True)
    shutil.chown(target.parent, user="postgres", group="postgres")
    link.symlink_to(target)
    return target


def init_postgres(bindir: Path, datadir: Path) -> None:
    if (datadir / "PG_VERSION").exists():
        return
    datadir.mkdir(parents=True, exist_ok=True)
    user = server_user()
    if user:
        shutil.chown(datadir, user=user, group=user)
    say(f"creating the PostgreSQL cluster in {datadir}")
    subprocess.run(
        as_server_user(
            [str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def start_postgres(bindir: Path, datadir: Path) -> subprocess.Popen[bytes]:
    log = (DATA / "logs" / "postgres.log").open("ab")
    argv = [str(bindir / "postgres"), "-D", str(datadir), "-p", str(PG_PORT)]
    # TCP on loopback only; no Unix socket (its path length limit would depend on the checkout).
    argv += ["-h", "127.0.0.1", "-c", "unix_socket_directories="]
    # Its own session: a Ctrl-C in the terminal reaches this runner, which stops PostgreSQL last.
    return subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, user=server_user(), start_new_session=True
    )


def psql(bindir: Path, sql: str) -> str:
    argv = [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres"]
    argv += ["-d", "postgres", "-tAc", sql]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip())
    return result.stdout.strip()


def wait_for_postgres(bindir: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            sys.exit(f"fleet: PostgreSQL exited; see {DATA / 'logs' / 'postgres.log'}")
        try:
            psql(bindir, "SELECT 1")
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                sys.exit("fleet: PostgreSQL did not accept connections within 30 s")
            time.sleep(0.1)


def database_url(service: Service) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{PG_PORT}/{service.database}"


def prepare_databases(bindir: Path, secrets: dict[str, str]) -> None:
    """Create each service's database when missing, then migrate all four at once."""
    for service in SERVICES:
        exists = psql(bindir, f"SELECT 1 FROM pg_database WHERE datname = '{service.database}'")
        if not exists:
            psql(bindir, f'CREATE DATABASE "{service.database}"')
    migrations = {
        service: subprocess.Popen(
            [str(service.workdir / ".venv" / "bin" / "alembic"), "upgrade", "head"],
            cwd=service.workdir,
            env={**os.environ, **service_env(service, secrets)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for service in SERVICES
    }
    for service, process in migrations.items():
        output, _ = process.communicate()
        if process.returncode != 0:
            sys.stdout.write(output.decode(errors="replace"))
            raise SystemExit(f"fleet: migrating {service.name} failed")
        say(f"{service.name}: database '{service.database}' migrated")


# --- the services and the gateway -------------------------------------------------------------


def local_secrets() -> dict[str, str]:
    """Secrets made once for this checkout's local fleet, kept in ``.fleet/secrets.json`` (0600).

    FLEET_ADMIN_PASSWORD, when set, wins over the generated admin password.
    """
    path = DATA / "secrets.json"
    secrets: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    for name in ("admin_password", "orders_client_secret"):
        secrets.setdefault(name, token_urlsafe(18))
    if "orders_client_secret_hash" not in secrets:
        users = SERVICES[0]
        secrets["orders_client_secret_hash"] = subprocess.run(
            [str(users.workdir / ".venv" / "bin" / "python"), "-m", "app.hash_secret"],
            input=secrets["orders_client_secret"],
            cwd=users.workdir,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    path.touch(mode=0o600)
    path.write_text(json.dumps(secrets, indent=2))
    if os.environ.get("FLEET_ADMIN_PASSWORD"):
        secrets["admin_password"] = os.environ["FLEET_ADMIN_PASSWORD"]
    return secrets


def service_env(service: Service, secrets: dict[str, str]) -> dict[str, str]:
    """The environment of one service: its database, where its peers are, its secrets."""
    users, catalog = SERVICES[0], SERVICES[1]
    prefix = service.prefix
    env = {
        f"{prefix}DATABASE_URL": database_url(service),
        f"{prefix}JWKS_URL": f"http://127.0.0.1:{users.port}/auth/jwks",
        f"{prefix}ENVIRONMENT": "development",
    }
    if service is users:
        env["USERS_SIGNING_KEY_FILE"] = str(DATA / "keys" / "user-service-signing-key.pem")
        env["USERS_ADMIN_EMAIL"] = ADMIN_EMAIL
        env["USERS_ADMIN_PASSWORD"] = secrets["admin_password"]
        env["USERS_SERVICE_CLIENTS"] = json.dumps(
            {"order-processing-service": secrets["orders_client_secret_hash"]}
        )
    elif service.prefix == "ORDERS_":
        env["ORDERS_CATALOG_URL"] = f"http://127.0.0.1:{catalog.port}"
        env["ORDERS_USERS_URL"] = f"http://127.0.0.1:{users.port}"
        env["ORDERS_SERVICE_CLIENT_ID"] = "order-processing-service"
        env["ORDERS_SERVICE_CLIENT_SECRET"] = secrets["orders_client_secret"]
    elif service.prefix == "CHAT_":
        env["CHAT_CATALOG_URL"] = f"http://127.0.0.1:{catalog.port}"
    return env


def gateway_env() -> dict[str, str]:
    env = {"GATEWAY_LISTEN": f"127.0.0.1:{GATEWAY_PORT}"}
    names = ("USER", "CATALOG", "ORDER", "CHAT")
    for name, service in zip(names, SERVICES, strict=True):
        env[f"{name}_SERVICE_UPSTREAM"] = f"127.0.0.1:{service.port}"
    return env


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def watch_readiness(manager: Manager, gave_up: threading.Event, admin_password: str) -> None:
    urls = [f"http://127.0.0.1:{GATEWAY_PORT}/healthz"]
    urls += [f"http://127.0.0.1:{service.port}/ready" for service in SERVICES]
    deadline = time.monotonic() + READY_TIMEOUT
    while not all(answers(url) for url in urls):
        if time.monotonic() > deadline:
            say(f"the fleet did not become ready within {READY_TIMEOUT:g} s; stopping it")
            gave_up.set()
            manager.terminate()
            return
        time.sleep(0.2)
    base = f"http://127.0.0.1:{GATEWAY_PORT}"
    say("the fleet is ready")
    say(f"  gateway   {base}   (try: curl -i {base}/healthz  or  curl -i {base}/api/products)")
    for service in SERVICES:
        say(f"  {service.name:<25} http://127.0.0.1:{service.port}  (direct, not for clients)")
    say(f"  admin login: {ADMIN_EMAIL} / {admin_password}  (FLEET_ADMIN_EMAIL, FLEET_ADMIN_PASSWORD)")
    say("press Ctrl-C to stop everything")


def check_not_running() -> None:
    if PID_FILE.exists():
        pid = int(PID_FILE.read_text().strip() or 0)
        if running(pid):
            sys.exit(f"fleet: already running (pid {pid}); stop it with 'make down' first.")
        PID_FILE.unlink()
    busy = [port for port in (GATEWAY_PORT, PG_PORT, *(s.port for s in SERVICES)) if in_use(port)]
    if busy:
        sys.exit(f"fleet: port(s) {', '.join(map(str, busy))} already in use on 127.0.0.1.")


def in_use(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def up() -> int:
    check_not_running()
    for sub in ("run", "logs", "gateway", "keys"):
        (DATA / sub).mkdir(parents=True, exist_ok=True)
    PID_FILE.write_text(str(os.getpid()))
    bindir = postgres_bindir()
    datadir = postgres_data_dir()
    init_postgres(bindir, datadir)
    postgres = start_postgres(bindir, datadir)
    say(f"PostgreSQL on 127.0.0.1:{PG_PORT} (data in {DATA / 'pgdata'})")
    try:
        wait_for_postgres(bindir, postgres)
        secrets = local_secrets()
        prepare_databases(bindir, secrets)
        manager = Manager()
        for service in SERVICES:
            manager.add_process(
                service.name,
                f"exec .venv/bin/uvicorn app.main:create_app --factory "
                f"--host 127.0.0.1 --port {service.port}",
                env={**os.environ, **service_env(service, secrets)},
                cwd=str(service.workdir),
            )
        manager.add_process(
            "gateway",
            f"exec {sys.executable} scripts/run_local.py --workdir {DATA / 'gateway'}",
            env={**os.environ, **gateway_env()},
            cwd=str(ROOT / "api-gateway-service"),
        )
        gave_up = threading.Event()
        threading.Thread(target=watch_readiness, args=(manager, gave_up, secrets["admin_password"]), daemon=True).start()
        manager.loop()
        if gave_up.is_set():
            return 1
        # 130/143: stopped on request (Ctrl-C, SIGTERM, make down); anything else is a failure.
        return 0 if manager.returncode in (None, 0, 130, 143) else manager.returncode
    finally:
        postgres.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
        postgres.wait(30)
        say("PostgreSQL stopped")
        PID_FILE.unlink(missing_ok=True)


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent counts as stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def down() -> int:
    if not PID_FILE.exists():
        say("no fleet is running")
        return 0
    pid = int(PID_FILE.read_text().strip())
    if not running(pid):
        PID_FILE.unlink(missing_ok=True)
        say("no fleet is running (removed a stale pid file)")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while running(pid) and PID_FILE.exists():
        if time.monotonic() > deadline:
            say(f"the fleet (pid {pid}) did not stop within 60 s")
            return 1
        time.sleep(0.2)
    # The runner removes its pid file last, after PostgreSQL has stopped.
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    say("stopped")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down"])
    args = parser.parse_args()
    return up() if args.command == "up" else down()


if __name__ == "__main__":
    sys.exit(main())
