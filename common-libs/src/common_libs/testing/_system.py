"""What the throwaway servers need from the machine: a Docker daemon, or Debian's packages."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from urllib.parse import urlsplit

__all__ = ["apt_install", "docker_available"]


def docker_available() -> bool:
    """Tell whether a Docker daemon accepts connections at ``DOCKER_HOST`` (or the default socket).

    Probed with a plain socket: docker-py leaves its socket open when no daemon answers.
    """
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    parts = urlsplit(host)
    try:
        if parts.scheme == "unix":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1.0)
                sock.connect(parts.path)
        elif parts.scheme == "tcp":
            socket.create_connection(
                (parts.hostname or "127.0.0.1", parts.port or 2375), 1.0
            ).close()
        else:
            return False
    except OSError:
        return False
    return True  # pragma: no cover - needs a Docker engine


def apt_install(package: str, *, missing: str, override: str) -> None:  # pragma: no cover
    """Install Debian's ``package`` (as root, with apt-get), or say what to do instead.

    Runs only on a machine without the server: ``missing`` says what is missing, ``override``
    names the variable that points the tests at an existing server instead.
    """
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(f"{missing}; install Debian's {package!r} package or set {override}.")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)  # noqa: S607
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)  # noqa: S603, S607
