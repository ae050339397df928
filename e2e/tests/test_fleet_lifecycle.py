"""`make up` / `make down` semantics: one fleet at a time, and nothing left running after a stop."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from common_libs.testing import wait_until

from tests.fleet import Fleet, get, new_fleet, pid_alive, port_open


def _assert_everything_stopped(fleet: Fleet, pids: list[int]) -> None:
    wait_until(
        lambda: not any(pid_alive(pid) for pid in pids),
        timeout=10,
        message="every fleet process exits",
    )
    assert [port for port in fleet.ports.values() if port_open(port)] == []


def test_ctrl_c_stops_every_process_of_the_fleet() -> None:
    fleet = new_fleet()
    try:
        fleet.start()
        pids = fleet.pids()
        assert len(pids) == 8  # four services, nginx, NATS, Prometheus, PostgreSQL

        fleet.stop(signal.SIGINT)

        _assert_everything_stopped(fleet, pids)
    finally:
        fleet.stop()
        fleet.remove()


def test_second_up_says_the_fleet_is_running_and_down_stops_it() -> None:
    fleet = new_fleet()
    try:
        fleet.start()
        pids = fleet.pids()

        second = fleet.run_fleet_command("up")
        assert second.returncode != 0
        assert "already running" in second.stderr

        down = fleet.run_fleet_command("down")
        assert down.returncode == 0
        assert fleet.process is not None
        assert fleet.process.wait(60) == 0

        _assert_everything_stopped(fleet, pids)
    finally:
        fleet.stop()
        fleet.remove()


def test_down_stops_what_a_killed_runner_left_running_and_up_points_to_it() -> None:
    fleet = new_fleet()
    pids: list[int] = []
    try:
        fleet.start()
        pids = fleet.pids()
        assert fleet.process is not None
        fleet.process.kill()  # SIGKILL: the runner stops nothing, its children go on
        fleet.process.wait(10)
        assert all(pid_alive(pid) for pid in pids)

        second = fleet.run_fleet_command("up")
        assert second.returncode == 1
        assert "8 process(es) of an earlier fleet still running" in second.stderr
        assert "'make down'" in second.stderr

        down = fleet.run_fleet_command("down")
        assert down.returncode == 0
        assert "stopped 8 process(es) an earlier fleet left running" in down.stdout
        _assert_everything_stopped(fleet, pids)
        # PostgreSQL had its fast shutdown, not SIGKILL: its log says so.
        assert "fast shutdown request" in (fleet.data_dir / "logs" / "postgres.log").read_text()
        assert "no fleet is running" in fleet.run_fleet_command("down").stdout
    finally:
        fleet.stop()  # the runner, if the test failed before killing it
        for pid in pids:  # whatever the checks above left running
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        fleet.remove()


@contextmanager
def _listening(port: int) -> Iterator[None]:
    with socket.create_server(("127.0.0.1", port)):
        yield


@contextmanager
def _local_end_of_a_connection(port: int) -> Iterator[None]:
    """``port`` held as the local end of an outgoing connection, as any client's ephemeral port
    may be (no listener there: connecting to it is refused, binding it fails)."""
    with socket.create_server(("127.0.0.1", 0)) as server, socket.socket() as client:
        client.bind(("127.0.0.1", port))
        client.connect(server.getsockname())
        yield


@pytest.mark.parametrize("holder", [_listening, _local_end_of_a_connection])
def test_up_names_a_port_in_use_and_its_variable_and_starts_nothing(
    holder: Callable[[int], AbstractContextManager[None]],
) -> None:
    fleet = new_fleet()
    port = fleet.ports["FLEET_PROMETHEUS_PORT"]
    try:
        with holder(port):
            result = fleet.run_fleet_command("up")

        assert result.returncode == 1
        assert f"port(s) {port} (FLEET_PROMETHEUS_PORT) already in use" in result.stderr
        assert not (fleet.data_dir / "pgdata").exists()
    finally:
        fleet.remove()


def test_down_while_the_fleet_is_starting_stops_postgresql_too() -> None:
    fleet = new_fleet()
    try:
        fleet.launch()
        # PostgreSQL is starting; the runner has its secrets and migrations still to do before
        # the supervisor takes over the signals. Its pid file exists a moment before it holds the
        # pid (read empty once under load: an IndexError).
        wait_until(
            lambda: fleet.postmaster_pid() is not None, timeout=60, message="PostgreSQL starts"
        )
        pids = fleet.pids()

        down = fleet.run_fleet_command("down")

        assert down.returncode == 0
        assert fleet.process is not None
        assert fleet.process.wait(60) in (0, 130)
        _assert_everything_stopped(fleet, pids)
    finally:
        fleet.stop()
        fleet.remove()


# Steps of the start, before the supervisor runs the services (it has its own handlers).
_START_STEPS: dict[str, Callable[[Fleet], bool]] = {
    "initdb": lambda fleet: (fleet.data_dir / "pgdata.initdb").exists(),
    "postgresql starting": lambda fleet: fleet.postmaster_pid() is not None,
    "migrations": lambda fleet: "migrated" in fleet.log(),
}


@pytest.mark.parametrize("step", list(_START_STEPS))
def test_ctrl_c_during_the_start_of_a_background_up_stops_everything(step: str) -> None:
    # Started as `make up &` is: SIGINT arrives ignored. The runner once kept it so until the
    # supervisor ran, and a SIGINT during the start was lost: the fleet came up anyway.
    fleet = new_fleet()
    try:
        fleet.launch(as_background_job=True)
        wait_until(lambda: _START_STEPS[step](fleet), timeout=60, message=step)
        started = fleet.pids()

        assert fleet.stop(signal.SIGINT) in (0, 130)

        _assert_everything_stopped(fleet, [*started, *fleet.pids()])
    finally:
        fleet.stop()
        fleet.remove()


def test_up_after_a_down_during_initdb_starts_on_a_complete_cluster() -> None:
    fleet = new_fleet()
    try:
        fleet.launch()
        # initdb writes into a staging folder that becomes pgdata only once it is complete.
        wait_until((fleet.data_dir / "pgdata.initdb").exists, timeout=60, message="initdb runs")
        assert fleet.run_fleet_command("down").returncode == 0
        assert fleet.process is not None
        assert fleet.process.wait(60) in (0, 130)

        fleet.start()

        assert get(fleet.gateway + "/healthz").status_code == 200
    finally:
        fleet.stop()
        fleet.remove()
