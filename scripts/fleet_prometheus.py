"""The fleet's local Prometheus: it scrapes every service and evaluates the SLO rules.

Debian's ``prometheus`` listens on 127.0.0.1 only. ``observability/prometheus.yml`` is rendered
into ``<data>/prometheus.yml`` with the fleet's ports; the rules are read where they are, in
``observability/rules/`` of the checkout (after editing them, ``curl -X POST <url>/-/reload``);
the TSDB stays in ``<data>/prometheus`` across restarts. The runner waits until ``/-/ready``
answers and stops the server by its own pid, after the services.
"""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from string import Template

from fleet_postgres import installed_binary, say
from fleet_supervisor import Child, Supervisor, spawn

__all__ = ["PrometheusError", "render_config", "running_prometheus"]

ROOT = Path(__file__).resolve().parent.parent
OBSERVABILITY = ROOT / "observability"
CONFIG_TEMPLATE = OBSERVABILITY / "prometheus.yml"
RULES_DIR = OBSERVABILITY / "rules"
# Debian installs it into /usr/bin; a PATH without it still finds the package's binary.
DEBIAN_BINARY = Path("/usr/bin/prometheus")


class PrometheusError(Exception):
    """Prometheus cannot be found or started."""


def prometheus_binary() -> Path:
    """``prometheus`` on PATH, else Debian's."""
    binary = installed_binary("prometheus", DEBIAN_BINARY)
    if binary is None:
        raise PrometheusError("prometheus not found; run 'make up' (it installs it).")
    return binary


def render_config(
    ports: Mapping[str, Sequence[int]], *, port: int, template: Path = CONFIG_TEMPLATE
) -> str:
    """The template with each service's targets (``USER_SERVICE_TARGETS``, ...: every replica's
    address, from the ports by variable ``USER_SERVICE_PORT``, ...), its own ``port``
    (``FLEET_PROMETHEUS_PORT``) and the rules' folder (``RULES_DIR``) filled in."""
    values = {
        name.removesuffix("_PORT") + "_TARGETS": ", ".join(f'"127.0.0.1:{p}"' for p in replicas)
        for name, replicas in ports.items()
    }
    values |= {"FLEET_PROMETHEUS_PORT": str(port), "RULES_DIR": str(RULES_DIR)}
    try:
        return Template(template.read_text()).substitute(values)
    except (KeyError, ValueError) as exc:
        raise PrometheusError(f"{template} names an unknown value: {exc}") from None


def start_prometheus(
    binary: Path, config_path: Path, tsdb_dir: Path, *, port: int, log_path: Path
) -> subprocess.Popen[bytes]:
    """The server, in the background, its output appended to ``log_path``."""
    argv = [
        str(binary),
        f"--config.file={config_path}",
        f"--storage.tsdb.path={tsdb_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        # POST /-/reload reads edited rules; loopback only, like everything the fleet runs.
        "--web.enable-lifecycle",
    ]
    # Its own session: a Ctrl-C in the terminal reaches the runner, which stops Prometheus after
    # the services.
    with log_path.open("ab") as log:
        return spawn(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def ready(url: str) -> bool:
    """Whether the server at ``url`` says it is ready (its TSDB open, its rules loaded)."""
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_for_prometheus(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Until ``/-/ready`` answers 200 (at most 60 s: a long write-ahead log takes a while)."""
    deadline = time.monotonic() + 60
    while not ready(url):
        if process.poll() is not None:
            raise PrometheusError(f"prometheus exited; see {log_path}")
        if time.monotonic() > deadline:
            raise PrometheusError(f"Prometheus was not ready within 60 s; see {log_path}")
        time.sleep(0.05)


def stop_prometheus(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM (Prometheus closes its TSDB cleanly), SIGKILL after ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_prometheus(
    data_dir: Path,
    port: int,
    ports: Mapping[str, Sequence[int]],
    *,
    supervisor: Supervisor | None = None,
) -> Iterator[str]:
    """Prometheus on 127.0.0.1:``port`` scraping the services' replicas on ``ports`` (by
    variable), its
    TSDB in ``<data_dir>/prometheus``, until the block ends; yields its URL. With a
    ``supervisor``, it is started again when it exits meanwhile."""
    log_path = data_dir / "logs" / "prometheus.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tsdb_dir = data_dir / "prometheus"
    tsdb_dir.mkdir(parents=True, exist_ok=True)
    config_path = data_dir / "prometheus.yml"
    config_path.write_text(render_config(ports, port=port))
    url = f"http://127.0.0.1:{port}"
    binary = prometheus_binary()
    server = Child(
        "prometheus",
        lambda: start_prometheus(binary, config_path, tsdb_dir, port=port, log_path=log_path),
    )
    if supervisor is not None:
        supervisor.watch(server)  # before the start: the supervisor's ledger writes it down
    try:
        # Started inside the try, the handle stored before a 'make down' (or Ctrl-C) that lands
        # right after the start is raised: it still stops it.
        process = server.start()
        say(f"Prometheus started (pid={process.pid}) on {url}, data in {tsdb_dir}")
        wait_for_prometheus(url, process, log_path)
        yield url
    finally:
        if server.process is not None:  # the one running now
            stop_prometheus(server.process)
            say("Prometheus stopped")
