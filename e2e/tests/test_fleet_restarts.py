"""`make up` keeps the fleet running: a process that dies is started again, the fleet serves on."""

from __future__ import annotations

import os
import re
import signal
from functools import partial

import httpx
from common_libs.testing import wait_until

from tests.fleet import Fleet, new_fleet, pid_alive, port_open

_ANY_PID = re.compile(r"\(pid=(\d+)")
_NATS_PID = re.compile(r"NATS started \(pid=(\d+)\)")
_SERVICE_PORTS = (
    "USER_SERVICE_PORT",
    "CATALOG_SERVICE_PORT",
    "ORDER_SERVICE_PORT",
    "CHAT_SERVICE_PORT",
)


def _postmaster(fleet: Fleet) -> int:
    return int((fleet.data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])


def _started_again(fleet: Fleet, name: str) -> bool:
    return any(line.startswith("started again (pid=") for line in fleet.lines_of(name))


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _serves(fleet: Fleet) -> bool:
    """Every service ready, and a catalog read (from its database) through the gateway."""
    ready = (f"http://127.0.0.1:{fleet.ports[port]}/ready" for port in _SERVICE_PORTS)
    return all(_answers(url) for url in ready) and _answers(f"{fleet.gateway}/api/products")


def test_a_killed_service_postgresql_and_nats_are_started_again_and_the_fleet_serves_on() -> None:
    fleet = new_fleet()
    try:
        fleet.start()
        killed = {
            "product-catalog-service": fleet.pid_of("product-catalog-service"),
            "postgresql": _postmaster(fleet),
            "nats": int(_NATS_PID.findall(fleet.log())[0]),
        }
        for name, pid in killed.items():
            os.kill(pid, signal.SIGKILL)

            wait_until(
                partial(_started_again, fleet, name),
                timeout=60,
                message=f"{name} started again",
            )
            wait_until(lambda: _serves(fleet), timeout=60, message=f"serving again after {name}")
            assert fleet.process is not None
            assert fleet.process.poll() is None  # the runner ran on

        said = fleet.lines_of("product-catalog-service")
        assert "stopped (SIGKILL); starting it again in 1 s" in said
        pids = [int(pid) for pid in _ANY_PID.findall(fleet.log())] + [_postmaster(fleet)]

        assert fleet.stop(signal.SIGINT) == 0

        wait_until(
            lambda: not any(pid_alive(pid) for pid in pids),
            timeout=10,
            message="every process the fleet started, restarted ones too, exits",
        )
        assert [port for port in fleet.ports.values() if port_open(port)] == []
    finally:
        fleet.stop()
        fleet.remove()
