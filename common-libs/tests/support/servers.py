"""Starting the upstream app (``upstream_app.py``) as a real uvicorn process."""

from __future__ import annotations

import sys
from pathlib import Path

from common_libs.testing import ServerProcess, free_port

SUPPORT_DIR = Path(__file__).parent


def start_upstream(log_dir: Path) -> ServerProcess:
    """Start the upstream app on a free port of 127.0.0.1 and wait until it serves."""
    port = free_port()
    return ServerProcess(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(SUPPORT_DIR),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "upstream_app:app",
        ],
        log_path=log_dir / f"upstream-{port}.log",
        ready_url=f"http://127.0.0.1:{port}/health",
    ).start()


def base_url(server: ServerProcess) -> str:
    """The ``http://host:port`` a started upstream listens on."""
    assert server.ready_url is not None
    return server.ready_url.removesuffix("/health")
