"""The services as real processes the test controls one by one.

PostgreSQL and NATS, then user-service, product-catalog-service and order-processing-service
(the order path), and chat-llm-service when asked for, each a uvicorn child process of the test
with its own database. Everything is set up with ``scripts/fleet.py`` (PostgreSQL, NATS and its
streams, databases and migrations, the local secrets, each service's environment and command
line), so these processes run exactly as under ``make up``; only the process management is the
test's own, because the fleet's supervisor stops the whole fleet when one process dies and these
tests kill, stop and restart single services on purpose.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fleet as runner
import httpx
from common_libs.testing import free_port, wait_until

from tests.fleet import fetch_rows
from tests.support.shop import Endpoints, Shop

ADMIN_EMAIL = "order-path-admin@example.com"
ADMIN_PASSWORD = "order-path-admin-password"
# The order service as these tests run it: a catalog deadline with room for a busy shared
# machine (20 orders at once), and a reconciler that takes over a pending order soon after
# (the service requires more than twice the deadline) and looks every half second.
CATALOG_DEADLINE_SECONDS = 5.0
ORDERS_SETTINGS = {
    "ORDERS_CATALOG_DEADLINE_SECONDS": str(CATALOG_DEADLINE_SECONDS),
    "ORDERS_PENDING_MAX_AGE_SECONDS": str(2 * CATALOG_DEADLINE_SECONDS + 1),
    "ORDERS_RECONCILE_INTERVAL_SECONDS": "0.5",
}


@dataclass
class ServiceProcess:
    """One service as a uvicorn child process, its output appended to its own log file."""

    service: runner.Service
    config: runner.FleetConfig
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.config.url(self.service)

    @property
    def log_path(self) -> Path:
        return self.config.data_dir / "logs" / f"{self.service.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def launch(self, extra_env: Mapping[str, str] | None = None) -> None:
        """Start the process (``wait_ready`` waits for its ``/ready``)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                runner.service_command(self.config, self.service),
                cwd=self.service.workdir,
                env={**self.env, **(extra_env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> None:
        wait_until(self._ready, timeout=60, message=f"{self.service.name} answers /ready")

    def start(self, extra_env: Mapping[str, str] | None = None) -> None:
        self.launch(extra_env)
        self.wait_ready()

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.service.name} exited:\n{self.log()[-3000:]}")
        return runner.answers(f"{self.url}/ready")

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown) and wait; SIGKILL if it does not exit."""
        if not self.is_running():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: the process dies at once, whatever it was doing."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)


@dataclass
class Services:
    """The running services: their configuration and their processes (``chat`` when asked for)."""

    config: runner.FleetConfig
    users: ServiceProcess
    catalog: ServiceProcess
    orders: ServiceProcess
    chat: ServiceProcess

    @property
    def nats_url(self) -> str:
        return self.config.nats_url

    def shop(self, client: httpx.Client) -> Shop:
        """The services' API, called directly (there is no gateway here)."""
        endpoints = Endpoints(
            users=self.users.url,
            catalog=self.catalog.url,
            orders=self.orders.url,
            chat=self.chat.url,
        )
        return Shop(endpoints, client)

    async def fetch(self, service: runner.Service, query: str, *args: object) -> list[Any]:
        """Rows of ``query`` in ``service``'s own database."""
        return await fetch_rows(self.config.pg_port, service.database, query, *args)

    async def catalog_stock(self, product_id: str) -> dict[str, int]:
        """``held`` and ``sold`` of a product, read from the catalog's own tables."""
        (row,) = await self.fetch(
            runner.CATALOG,
            """
            SELECT p.stock, p.held,
                   coalesce((SELECT sum(i.quantity)
                               FROM reservation_items i
                               JOIN reservations r ON r.id = i.reservation_id
                              WHERE i.product_id = p.id AND r.status = 'committed'), 0) AS sold
              FROM products p
             WHERE p.id = $1
            """,
            product_id,
        )
        return {"stock": row["stock"], "held": row["held"], "sold": int(row["sold"])}

    async def reservation_status(self, reservation_id: str) -> str | None:
        """The catalog's status of a reservation (the order id is the reservation id)."""
        rows = await self.fetch(
            runner.CATALOG, "SELECT status FROM reservations WHERE id = $1", reservation_id
        )
        return str(rows[0]["status"]) if rows else None


@contextmanager
def running_services(
    *, chat_env: Mapping[str, str] | None = None, start_chat: bool = True
) -> Iterator[Services]:
    """PostgreSQL, NATS and the services on free ports with a throwaway data folder.

    With ``chat_env`` (its LLM settings, say) chat-llm-service is prepared too, and started
    unless ``start_chat`` is false (a test then starts it when it wants).
    """
    data_dir = Path(tempfile.mkdtemp(prefix="services-e2e-"))
    # PostgreSQL runs as the unprivileged 'postgres' account when the tests run as root.
    data_dir.chmod(0o755)
    config = runner.FleetConfig(
        data_dir=data_dir,
        service_ports={service.name: free_port() for service in runner.SERVICES},
        gateway_port=free_port(),
        pg_port=free_port(),
        nats_port=free_port(),
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        environ=dict(os.environ),
    )
    services = runner.SERVICES if chat_env is not None else runner.SERVICES[:3]
    try:
        with (
            runner.running_postgres(config.data_dir, config.pg_port) as bindir,
            runner.running_nats(config.data_dir, config.nats_port) as nats_url,
        ):
            runner.create_streams(runner.CATALOG.workdir / ".venv" / "bin" / "python", nats_url)
            secrets = runner.local_secrets(config)
            runner.prepare_databases(config, bindir, secrets, services)
            processes = {
                service: ServiceProcess(
                    service,
                    config,
                    {**config.environ, **runner.service_env(config, service, secrets)},
                )
                for service in runner.SERVICES
            }
            processes[runner.ORDERS].env.update(ORDERS_SETTINGS)
            processes[runner.CHAT].env.update(chat_env or {})
            started = [processes[s] for s in services if s is not runner.CHAT or start_chat]
            path = Services(config, *(processes[s] for s in runner.SERVICES))
            try:
                for process in started:
                    process.launch()
                for process in started:
                    process.wait_ready()
                yield path
            finally:
                for process in reversed(processes.values()):
                    process.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
