"""`make up` / `make down` semantics: one fleet at a time, and nothing left running after a stop."""

from __future__ import annotations

import signal

from tests.fleet import Fleet, new_fleet, pid_alive, port_open, wait_until


def _assert_everything_stopped(fleet: Fleet, pids: list[int]) -> None:
    wait_until(
        lambda: not any(pid_alive(pid) for pid in pids),
        timeout=10,
        message="every fleet process exits",
    )
    assert [port for port in fleet.ports.values() if port_open(port)] == []


def test_ctrl_c_stops_every_process_of_the_fleet() -> None:
    fleet = new_fleet().start()
    try:
        pids = fleet.pids()
        assert len(pids) == 6  # four services, nginx, PostgreSQL

        fleet.stop(signal.SIGINT)

        _assert_everything_stopped(fleet, pids)
    finally:
        fleet.stop(signal.SIGKILL)
        fleet.remove()


def test_second_up_says_the_fleet_is_running_and_down_stops_it() -> None:
    fleet = new_fleet().start()
    try:
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
        fleet.stop(signal.SIGKILL)
        fleet.remove()
