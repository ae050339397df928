"""``python -m common_libs.testing.standalone`` as a developer runs it: a real process, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from support.standalone import run_json

from common_libs.testing import free_port, wait_until

RUNNER = [sys.executable, "-m", "common_libs.testing.standalone"]


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, their children...), read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # it ended while being read
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


@contextmanager
def runner(src: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The runner in ``src`` in a process group of its own (as a terminal's foreground job)."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            RUNNER,
            cwd=src,
            env={**os.environ, "PORT": str(port)},
            stdout=output,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    try:
        yield process
    finally:
        if process.poll() is None:  # pragma: no cover - only when the test failed
            os.killpg(process.pid, signal.SIGINT)
            process.wait(60)


def ctrl_c(process: subprocess.Popen[bytes]) -> int:
    """SIGINT to the runner's process group, as Ctrl-C in its terminal; its exit code."""
    os.killpg(process.pid, signal.SIGINT)
    return process.wait(60)


def test_ctrl_c_stops_everything_it_started_and_a_second_start_keeps_the_data(
    sample: Path, tmp_path: Path
) -> None:
    log, port = tmp_path / "runner.log", free_port()

    with runner(sample, port, log) as first:
        wait_until(lambda: (sample / ".run" / "run.json").exists(), timeout=90, message="ready")
        url = run_json(sample)["service"]["url"]
        assert httpx.get(f"{url}/ready").status_code == 200
        assert httpx.post(f"{url}/notes", json={"text": "kept"}).status_code == 201
        started = descendants(first.pid)
        assert len(started) >= 3  # PostgreSQL (and its workers), NATS, the service

        assert ctrl_c(first) == 0
    assert alive(started) == set()
    assert not (sample / ".run" / "run.json").exists()

    with runner(sample, port, log) as second:
        wait_until(lambda: (sample / ".run" / "run.json").exists(), timeout=90, message="ready")
        notes = httpx.get(f"{url}/notes").json()
        assert ctrl_c(second) == 0

    assert notes == ["kept"]
    output = log.read_text()
    assert output.count("standalone | sample-service ready at") == 2
    assert output.count("standalone | everything it started has stopped") == 2


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_a_closed_terminal_stop_everything_too(
    sample: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    with runner(sample, free_port(), tmp_path / "runner.log") as process:
        wait_until(lambda: (sample / ".run" / "run.json").exists(), timeout=90, message="ready")
        started = descendants(process.pid)

        process.send_signal(signum)

        assert process.wait(60) == 0
    assert started
    assert alive(started) == set()


def test_a_port_in_use_is_refused_naming_port(sample: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            RUNNER,
            cwd=sample,
            env={**os.environ, "PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in result.stdout
    assert "choose another one with PORT" in result.stdout
    assert not (sample / ".run").exists()  # refused before anything started


def test_an_unknown_neighbours_value_is_refused(sample: Path) -> None:
    result = subprocess.run(
        RUNNER,
        cwd=sample,
        env={**os.environ, "PORT": str(free_port()), "NEIGHBOURS": "staging"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "NEIGHBOURS='staging' is not understood" in result.stdout
    assert "NEIGHBOURS=fleet" in result.stdout
    assert not (sample / ".run").exists()
