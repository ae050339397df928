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
from support.servers import RUN_LOCAL, SERVICE_DIR, gateway_environment, nginx_binary


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
        assert (workdir / "static" / "openapi.json").is_file()

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


def test_the_served_files_are_laid_out_keeping_their_modification_times(tmp_path: Path) -> None:
    static = tmp_path / "static"

    assert run_local.prepare_static(static) == []

    sources = {
        static / "openapi.json": SERVICE_DIR / "openapi" / "openapi.json",
        static / "docs" / "index.html": SERVICE_DIR / "openapi" / "docs" / "index.html",
        static / "docs" / "init.js": SERVICE_DIR / "openapi" / "docs" / "init.js",
        **{
            static / "docs" / name: run_local.SWAGGER_UI_DIR / name
            for name in run_local.SWAGGER_UI_FILES
        },
    }
    for copy, source in sources.items():
        assert copy.read_bytes() == source.read_bytes(), copy
        # nginx's ETag is the modification time and the size: the same from one start to the next.
        assert copy.stat().st_mtime_ns == source.stat().st_mtime_ns, copy
    assert sorted(path.name for path in static.rglob("*") if path.is_file()) == sorted(
        path.name for path in sources
    )


def test_a_stale_file_of_an_earlier_layout_is_removed(tmp_path: Path) -> None:
    stale = tmp_path / "static" / "docs" / "old.js"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")

    run_local.prepare_static(tmp_path / "static")

    assert not stale.exists()


def test_without_swagger_ui_the_document_is_still_laid_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_local, "SWAGGER_UI_DIR", tmp_path / "not-installed")

    missing = run_local.prepare_static(tmp_path / "static")

    assert missing == list(run_local.SWAGGER_UI_FILES)
    assert (tmp_path / "static" / "openapi.json").is_file()
    assert (tmp_path / "static" / "docs" / "init.js").is_file()


def test_a_static_directory_from_the_environment_is_used_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_STATIC_DIR", str(tmp_path / "files"))

    run_local.prepare_workdir(tmp_path / "workdir")

    assert not (tmp_path / "workdir" / "static").exists()
    rendered = (tmp_path / "workdir" / "conf.d" / "gateway.conf").read_text(encoding="utf-8")
    assert f"alias {tmp_path}/files/openapi.json;" in rendered
