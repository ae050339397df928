"""scripts/run_local.py: what a process manager relies on to run the gateway and stop it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

import pytest

import run_local
from support.processes import ManagedProcess, free_port, http_answers, wait_until
from support.servers import RUN_LOCAL, gateway_environment, nginx_binary


def _port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_nginx_runs_in_the_foreground_in_its_workdir_and_stops_on_signal(
    tmp_path: Path, upstreams: dict[str, str], sig: signal.Signals
) -> None:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="run-local-"))
    env = gateway_environment(upstreams, {"GATEWAY_LISTEN": f"127.0.0.1:{port}"})
    argv = [sys.executable, str(RUN_LOCAL), "--workdir", str(workdir), "--nginx", nginx_binary()]
    process = ManagedProcess(argv, name=f"run-local-{sig.name}", log_dir=tmp_path, env=env)
    try:
        process.wait_ready(lambda: http_answers(f"http://127.0.0.1:{port}/api/users"))

        # run_local replaced itself with nginx: the pid it wrote is the process that was started.
        assert (workdir / "nginx.pid").read_text().strip() == str(process.pid)
        for temp in ("client_body_temp", "proxy_temp"):
            assert (workdir / temp).is_dir()
        assert (workdir / "conf.d" / "gateway.conf").is_file()

        assert process.stop(sig) == 0
        assert _port_closed(port)
        assert "emerg" not in process.stderr()
    finally:
        process.stop(signal.SIGKILL)
        wait_until(lambda: not process.is_running(), timeout=5, message="stopped")
        shutil.rmtree(workdir, ignore_errors=True)


def test_workers_drop_root_when_the_workdir_is_reachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    workdir = Path(tempfile.mkdtemp(prefix="run-local-"))
    try:
        assert run_local.worker_user_directive(workdir) == ""
        assert workdir.stat().st_mode & 0o755 == 0o755
    finally:
        workdir.rmdir()


def test_workers_keep_root_when_a_parent_of_the_workdir_is_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    workdir = private / "gateway"
    workdir.mkdir()

    assert run_local.worker_user_directive(workdir) == "user root;"


def test_no_user_directive_without_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() or 1000)

    assert run_local.worker_user_directive(tmp_path) == ""
