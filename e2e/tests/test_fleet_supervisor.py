"""The fleet's supervisor: children write straight to the runner's output, and no line is lost."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from common_libs.testing import wait_until

from tests.fleet import ROOT, pid_alive

LINES = 20_000

# Two children print LINES numbered lines each, at the same time: "a" to the stdout it inherits,
# "b" to /dev/stdout opened anew for appending, as nginx opens its access log (without
# O_APPEND on the shared file, "a" would write over what "b" appended). Neither exits on its own
# (the supervisor would start it again): "a", done, reads a FIFO until "b", done too, has opened
# and closed it, then asks the runner to stop (SIGTERM, as 'make down' does), which stops both.
RUNNER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from fleet_supervisor import Supervisor

    fifo = sys.argv[2]
    os.mkfifo(fifo)
    child = (
        "import os, signal, sys, threading\\n"
        "name, fifo = sys.argv[1], sys.argv[2]\\n"
        "out = sys.stdout if name == 'a' else open('/dev/stdout', 'a')\\n"
        "for i in range({lines}):\\n"
        "    print(f'{{name}} {{i:06d}} ' + 'x' * 60, file=out, flush=True)\\n"
        "mode = 'r' if name == 'a' else 'w'\\n"
        "with open(fifo, mode) as done:\\n"
        "    done.read() if name == 'a' else None\\n"
        "if name == 'a':\\n"
        "    os.kill(os.getppid(), signal.SIGTERM)\\n"
        "threading.Event().wait()\\n"
    )
    supervisor = Supervisor(grace=60)
    for name in ("a", "b"):
        argv = [sys.executable, "-c", child, name, fifo]
        supervisor.add(name, argv, env={{}}, cwd=Path.cwd())
    sys.exit(supervisor.run())
    """
).format(lines=LINES)


def run_supervisor(output: Path) -> int:
    with output.open("wb") as out:  # no O_APPEND: what `make up > fleet.log` opens
        result = subprocess.run(
            [sys.executable, "-c", RUNNER, str(ROOT / "scripts"), str(output.with_suffix(".fifo"))],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )
    return result.returncode


def run_with_the_runners_modules(source: str) -> subprocess.CompletedProcess[str]:
    """Run ``source`` in a Python of its own, ``scripts/`` as its first argument; its output."""
    return subprocess.run(
        [sys.executable, "-c", source, str(ROOT / "scripts")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_every_line_of_two_children_writing_at_once_reaches_a_file(tmp_path: Path) -> None:
    output = tmp_path / "fleet.log"

    returncode = run_supervisor(output)

    lines = output.read_text().splitlines()
    for name in ("a", "b"):
        printed = [line for line in lines if line.startswith(f"{name} ")]
        assert printed == [f"{name} {i:06d} " + "x" * 60 for i in range(LINES)]
    # The runner's own lines: "HH:MM:SS <name> | <text>".
    runner = sorted(line.split(" ", 1)[1] for line in lines if not line.startswith(("a ", "b ")))
    assert [text.split(" (pid=")[0] for text in runner] == [
        "a | started",
        "a | stopped (SIGTERM)",
        "b | started",
        "b | stopped (SIGTERM)",
    ]
    assert returncode == 128 + signal.SIGTERM


# A service that exits, and a server started beside the supervisor (as PostgreSQL, NATS and
# Prometheus are) that exits, are started again, after 1 s, then after 2 s when they exit again
# soon after their start; SIGTERM stops the supervisor (not the watched server: its code does).
RESTARTS = textwrap.dedent(
    """
    import subprocess, sys
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from fleet_supervisor import Child, Supervisor

    brief = [sys.executable, "-c", "import time; time.sleep(0.2)"]
    supervisor = Supervisor(grace=10)
    server = Child("server", lambda: subprocess.Popen(brief))
    print(f"server started (pid={server.start().pid})", flush=True)
    supervisor.watch(server)
    supervisor.add("service", brief, env={}, cwd=Path.cwd())
    sys.exit(supervisor.run())
    """
)


def test_a_process_that_exits_is_started_again_with_a_growing_backoff() -> None:
    runner = subprocess.Popen(
        [sys.executable, "-c", RESTARTS, str(ROOT / "scripts")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = runner.stdout
    assert output is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(output.readline, "")))
    reader.start()
    try:
        wait_until(
            lambda: sum("restart 2)" in line for line in lines) == 2,
            timeout=30,
            message="each started again twice",
        )
    finally:
        runner.send_signal(signal.SIGTERM)
        returncode = runner.wait(30)
        reader.join(10)
        output.close()

    def said(name: str) -> list[str]:
        texts = [line.split(" | ", 1)[1].strip() for line in lines if f" {name} | " in line]
        return [re.sub(r"pid=\d+", "pid=N", text) for text in texts]

    again = [
        "stopped (rc=0); starting it again in 1 s",
        "started again (pid=N, restart 1)",
        "stopped (rc=0); starting it again in 2 s",
        "started again (pid=N, restart 2)",
    ]
    assert said("server")[:4] == again, "".join(lines)
    assert said("service")[:5] == ["started (pid=N)", *again], "".join(lines)
    assert returncode == 128 + signal.SIGTERM
    pids = [int(pid) for line in lines for pid in re.findall(r"pid=(\d+)", line)]
    wait_until(
        lambda: not any(pid_alive(pid) for pid in pids),
        timeout=10,
        message="every process it started has exited",
    )


# A 'make down' that lands while the runner starts a server: the signal waits until the handle is
# stored, so the runner's clean-up has it; the server itself starts with the signals unblocked.
HELD = textwrap.dedent(
    """
    import os, signal, subprocess, sys, threading
    sys.path.insert(0, sys.argv[1])
    from fleet_supervisor import signals_held, spawn

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    child = "print(next(l for l in open('/proc/self/status') if l.startswith('SigBlk')), end='')"
    with signals_held():
        thread = threading.Thread(target=threading.Event().wait, daemon=True)
        thread.start()  # keeps them blocked: the signal below cannot go to it
    process = None
    try:
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            process = spawn([sys.executable, "-c", child], stdout=subprocess.PIPE)
        print("not interrupted")
    except KeyboardInterrupt:
        print("interrupted with the handle" if process is not None else "handle lost")
    finally:
        if process is not None:
            print(process.communicate()[0].decode(), end="")
    """
)


def test_a_stop_while_a_server_starts_arrives_once_its_handle_is_stored() -> None:
    result = run_with_the_runners_modules(HELD)

    assert result.stdout.splitlines() == [
        "interrupted with the handle",
        "SigBlk:\t0000000000000000",
    ], result.stdout + result.stderr
    assert result.returncode == 0
