"""ServerProcess, wait_until, wait_for_http and free_port, with real child processes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.upstream_app import upstream_server

from common_libs.testing import (
    ServerProcess,
    UvicornServer,
    UvicornThread,
    eventually,
    free_port,
    processes,
    wait_for_http,
    wait_until,
)
from common_libs.testing.processes import _claim, _ephemeral_ports

# A child that hands itself a port (and so claims it), says which, and keeps it until a line comes.
_HOLD_A_PORT = "from common_libs.testing import free_port; print(free_port(), flush=True); input()"
# A child that runs until a signal ends it; it says "ready" once its signal handling is in place.
# SIGINT gets Python's own handler back: a test run started in the background of a script
# inherits SIGINT ignored, and Python then leaves it ignored. It waits in short sleeps: a signal
# that lands just before one long blocking wait begins would be noticed only when it returns.
_SIGNALS = "import signal, time; signal.signal(signal.SIGINT, signal.default_int_handler); "
_WAIT = "print('ready', flush=True)\nwhile True: time.sleep(0.05)"
WAIT_FOREVER = _SIGNALS + _WAIT
IGNORE_SIGTERM = _SIGNALS + "signal.signal(signal.SIGTERM, signal.SIG_IGN); " + _WAIT


def python(
    code: str,
    log_path: Path,
    *,
    ready_url: str | None = None,
    ready_timeout: float = 20.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> ServerProcess:
    """A ServerProcess running ``code`` with this test run's Python."""
    return ServerProcess(
        [sys.executable, "-c", code],
        log_path=log_path,
        ready_url=ready_url,
        ready_timeout=ready_timeout,
        env=env,
        cwd=cwd,
    )


def unused_url() -> str:
    """A URL on a port where nothing listens."""
    return f"http://127.0.0.1:{free_port()}/health"


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "child.log"


@pytest.fixture
def forever(log_path: Path) -> Iterator[ServerProcess]:
    """A started child that runs until stopped."""
    process = python(WAIT_FOREVER, log_path).start()
    try:
        yield process
    finally:
        process.stop()


def paths_open_in_this_process() -> set[str]:
    """Where the file descriptors of the test process point to (Linux)."""
    paths = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            paths.add(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:  # the descriptor listing the directory itself
            continue
    return paths


def wait_for_output(process: ServerProcess, text: str) -> None:
    wait_until(lambda: text in process.output(), timeout=10, message=f"output {text!r}")


def test_started_process_runs_until_stopped(forever: ServerProcess) -> None:
    assert forever.process is not None

    wait_for_output(forever, "ready")
    assert forever.process.poll() is None

    assert forever.stop() == -signal.SIGTERM
    assert forever.process.poll() == -signal.SIGTERM


def test_stop_sends_the_given_signal(forever: ServerProcess) -> None:
    wait_for_output(forever, "ready")

    assert forever.stop(sig=signal.SIGINT) == -signal.SIGINT


def test_stop_kills_a_process_that_ignores_the_signal(log_path: Path) -> None:
    stubborn = python(IGNORE_SIGTERM, log_path).start()
    try:
        wait_for_output(stubborn, "ready")

        code = stubborn.stop(timeout=0.2)
    finally:
        stubborn.stop()

    assert code == -signal.SIGKILL


def test_kill_ends_the_process_abruptly(forever: ServerProcess) -> None:
    forever.kill()

    assert forever.process is not None
    assert forever.process.returncode == -signal.SIGKILL


def test_kill_and_stop_of_an_exited_process_report_its_exit_code(log_path: Path) -> None:
    finished = python("import sys; sys.exit(7)", log_path).start()
    assert finished.process is not None
    finished.process.wait()

    finished.kill()

    assert finished.stop() == 7
    assert finished.stop() == 7


def test_process_never_started_has_no_exit_code_or_output(log_path: Path) -> None:
    never = python(WAIT_FOREVER, log_path)

    never.kill()

    assert never.stop() is None
    assert never.output() == ""


def test_output_collects_stdout_and_stderr(log_path: Path) -> None:
    code = "import sys; print('to stdout', flush=True); print('to stderr', file=sys.stderr)"
    with python(code, log_path) as process:
        assert process.process is not None
        process.process.wait()

        assert process.output().splitlines() == ["to stdout", "to stderr"]


def test_child_gets_extra_environment_and_working_directory(log_path: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    code = "import os; print(os.environ['GREETING'], os.getcwd(), 'PATH' in os.environ)"
    with python(code, log_path, env={"GREETING": "hello"}, cwd=workdir) as process:
        assert process.process is not None
        process.process.wait()

        assert process.output().split() == ["hello", str(workdir), "True"]


def test_context_manager_stops_the_process(log_path: Path) -> None:
    with python(WAIT_FOREVER, log_path) as process:
        assert process.process is not None
        assert process.process.poll() is None

    assert process.process.returncode == -signal.SIGTERM


def http_server(tmp_path: Path, port: int, *, ready_url: str | None) -> ServerProcess:
    """Python's own file server for ``tmp_path``, on ``port`` of 127.0.0.1."""
    return ServerProcess(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        log_path=tmp_path / "http.log",
        cwd=tmp_path,
        ready_url=ready_url,
    )


def test_start_waits_until_the_ready_url_answers(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"

    with http_server(tmp_path, port, ready_url=url) as server:
        assert server.process is not None
        assert server.process.poll() is None
        assert httpx.get(url).status_code == 200


def test_process_that_exits_before_ready_raises_with_its_output(log_path: Path) -> None:
    crashing = python(
        "import sys; print('cannot bind: address in use'); sys.exit(3)",
        log_path,
        ready_url=unused_url(),
    )
    try:
        with pytest.raises(RuntimeError, match="exited early") as early:
            crashing.start()
    finally:
        exit_code = crashing.stop()

    assert "cannot bind: address in use" in str(early.value)
    assert exit_code == 3


def test_process_that_exits_before_ready_leaves_its_log_closed(log_path: Path) -> None:
    crashing = python("import sys; sys.exit(3)", log_path, ready_url=unused_url())

    with pytest.raises(RuntimeError, match="exited early"):
        crashing.start()

    assert str(log_path) not in paths_open_in_this_process()


def test_process_not_ready_in_time_is_stopped(log_path: Path) -> None:
    silent = python(WAIT_FOREVER, log_path, ready_url=unused_url(), ready_timeout=0.3)
    try:
        with pytest.raises(TimeoutError, match=r"ready at .* not met within 0.3 s"):
            silent.start()
    finally:
        silent.stop()

    assert silent.process is not None
    assert silent.process.returncode == -signal.SIGTERM
    assert str(log_path) not in paths_open_in_this_process()


def test_wait_until_returns_once_the_condition_holds_and_says_how_long_it_took() -> None:
    answers = iter([False, False, True])

    seconds = wait_until(lambda: next(answers), timeout=5, interval=0.001)

    assert next(answers, "exhausted") == "exhausted"
    assert 0 < seconds < 5


def test_wait_until_timeout_names_the_condition() -> None:
    with pytest.raises(TimeoutError, match=r"^database is up not met within 0.05 s$"):
        wait_until(lambda: False, timeout=0.05, interval=0.01, message="database is up")


def test_wait_for_http_returns_once_a_starting_server_answers(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"

    with http_server(tmp_path, port, ready_url=None):
        wait_for_http(url, timeout=10)

        assert httpx.get(url).status_code == 200


def test_wait_for_http_accepts_the_expected_status(upstream: str) -> None:
    url = f"{upstream}/no-such-page"

    wait_for_http(url, status=404, timeout=2)

    assert httpx.get(url).status_code == 404


def test_wait_for_http_times_out_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{free_port()}/health"

    with pytest.raises(TimeoutError, match=re.escape(f"GET {url} -> 200 not met within 0.2 s")):
        wait_for_http(url, timeout=0.2)


def test_wait_for_http_times_out_on_another_status(upstream: str) -> None:
    with pytest.raises(TimeoutError, match="-> 200 not met"):
        wait_for_http(f"{upstream}/no-such-page", timeout=0.2)


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        assert sock.getsockname() == ("127.0.0.1", port)


def test_free_port_hands_out_each_port_once_below_the_ephemeral_range() -> None:
    ports = {free_port() for _ in range(50)}

    assert len(ports) == 50
    assert max(ports) < _ephemeral_ports().start


def test_free_port_gives_up_when_no_port_can_be_bound() -> None:
    with pytest.raises(RuntimeError, match=r"no free TCP port found on 192\.0\.2\.1"):
        free_port("192.0.2.1", attempts=3)  # TEST-NET-1: no interface of this machine has it


def test_a_port_handed_out_is_claimed_against_every_other_process() -> None:
    port = free_port()
    check = f"from common_libs.testing.processes import _claim; print(_claim({port}))"

    other = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)

    assert other.stdout.strip() == "False", other.stderr
    # The lock belongs to the open file, as between processes: a second claim here fails too.
    assert _claim(port) is False


def test_free_port_skips_a_port_another_live_process_claims(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_A_PORT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        claimed = int(holder.stdout.readline())
        spare = free_port()
        processes._claims.pop(spare).close()  # free again, for the next free_port
        monkeypatch.setattr(processes.random, "sample", lambda *_: [claimed, spare])

        assert free_port() == spare
    finally:
        holder.communicate("\n", timeout=10)


def test_a_claim_whose_file_cannot_be_opened_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processes, "PORT_CLAIMS", tmp_path)
    (tmp_path / "21113").mkdir()

    assert _claim(21113) is False


def test_claims_past_the_limit_give_up_the_oldest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processes, "PORT_CLAIMS", tmp_path)
    monkeypatch.setattr(processes, "_MAX_CLAIMS", 1)
    monkeypatch.setattr(processes, "_claims", {})

    assert _claim(21114) is True
    assert _claim(21115) is True

    assert list(processes._claims) == [21115]
    assert _claim(21114) is True  # its lock was given up with its file
    for handle in processes._claims.values():
        handle.close()


def test_ephemeral_range_is_the_kernels_or_linuxs_default(tmp_path: Path) -> None:
    assert _ephemeral_ports(tmp_path / "missing") == range(32768, 61000)
    (tmp_path / "range").write_text("40000\t50000\n")
    assert _ephemeral_ports(tmp_path / "range") == range(40000, 50001)


def test_uvicorn_server_runs_a_factory_with_uvicorns_own_log_level(tmp_path: Path) -> None:
    server = upstream_server(tmp_path, factory=True)
    with server:
        answer = httpx.get(server.url + "/health")

    assert answer.status_code == 200
    assert "--factory" in server.argv
    assert "--log-level" not in UvicornServer("a:b", log_path=tmp_path, log_level=None).argv


# uvicorn leaves its thread with SystemExit when it cannot load the app.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_uvicorn_thread_that_cannot_start_raises() -> None:
    with pytest.raises(RuntimeError, match="did not start"), UvicornThread("no_such_module:app"):
        pass


async def test_eventually_awaits_an_async_condition_and_says_how_long_it_took() -> None:
    answers = iter([False, False, True])

    async def condition() -> bool:
        return next(answers)

    seconds = await eventually(condition, within=5, interval=0.001)

    assert 0 < seconds < 5


async def test_eventually_times_out_on_a_condition_that_never_holds() -> None:
    with pytest.raises(TimeoutError, match=r"the sky falls not met within 0\.05 s"):
        await eventually(lambda: False, within=0.05, message="the sky falls")


async def test_eventually_gives_up_a_check_that_never_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("common_libs.testing.processes.CHECK_GRACE_SECONDS", 0.05)

    async def hung() -> bool:
        await asyncio.Event().wait()  # a query on a connection nothing answers
        return True

    with pytest.raises(
        TimeoutError, match=r"the order paid: its check did not answer within 0\.1 s"
    ):
        await eventually(hung, within=0.05, message="the order paid")


async def test_a_slow_check_that_answers_within_the_grace_still_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("common_libs.testing.processes.CHECK_GRACE_SECONDS", 5.0)

    async def slow() -> bool:
        await asyncio.sleep(0.1)  # longer than ``within``, well inside the grace
        return True

    assert await eventually(slow, within=0.01, message="slow but true") >= 0.1
