"""The fleet's supervisor: children write straight to the runner's output, and no line is lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.fleet import ROOT

LINES = 20_000

# Two children print LINES numbered lines each, at the same time: "a" to the stdout it inherits,
# "b" to /dev/stdout opened anew for appending, as nginx opens its access log (without
# O_APPEND on the shared file, "a" would write over what "b" appended). Neither exits before
# both are done: "a" then reads a FIFO until "b", done too, has opened and closed it. So the
# supervisor, which stops the other child once one exits, never cuts a child short.
RUNNER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from fleet_supervisor import Supervisor

    fifo = sys.argv[2]
    os.mkfifo(fifo)
    child = (
        "import sys\\n"
        "name, fifo = sys.argv[1], sys.argv[2]\\n"
        "out = sys.stdout if name == 'a' else open('/dev/stdout', 'a')\\n"
        "for i in range({lines}):\\n"
        "    print(f'{{name}} {{i:06d}} ' + 'x' * 60, file=out, flush=True)\\n"
        "mode = 'r' if name == 'a' else 'w'\\n"
        "with open(fifo, mode) as done:\\n"
        "    done.read() if name == 'a' else None\\n"
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
    # The runner's own lines: "HH:MM:SS <name> | <text>" (the child stopped second may have
    # been stopped by the supervisor: its return code is not checked).
    runner = sorted(line.split(" ", 1)[1] for line in lines if not line.startswith(("a ", "b ")))
    assert [text.split(" (")[0] for text in runner] == [
        "a | started",
        "a | stopped",
        "b | started",
        "b | stopped",
    ]
    assert returncode == 0


# The runner's own servers (PostgreSQL, NATS, Prometheus) are its children too, started beside the
# supervisor: one that exits is reaped by the supervisor's wait, and the fleet stops as it does
# when a supervised child exits.
BESIDE = textwrap.dedent(
    """
    import subprocess, sys
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from fleet_supervisor import Supervisor

    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    print(f"server started (pid={server.pid})", flush=True)
    supervisor = Supervisor(grace=10)
    service = [sys.executable, "-c", "import time; time.sleep(60)"]
    supervisor.add("service", service, env={}, cwd=Path.cwd())
    sys.exit(supervisor.run())
    """
)


def test_a_server_started_beside_the_supervisor_that_exits_stops_the_fleet() -> None:
    result = run_with_the_runners_modules(BESIDE)

    server_pid = result.stdout.split("(pid=", 1)[1].split(")", 1)[0]
    lines = [line.split(" ", 1)[1] for line in result.stdout.splitlines()[1:]]
    assert lines[1] == f"pid {server_pid} | stopped (rc=0)", result.stdout + result.stderr
    assert lines[2] == "service | stopped (SIGTERM)"
    assert result.returncode == 0


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
