"""The gateway's configuration at several commits, side by side, against the same services.

``python -m bench.gateway_configs REV [REV ...]`` from the e2e folder (its venv; ``FLEET_PYTHON``
as for ``make bench``) starts the fleet as ``make bench`` does (raised rate limits), then one
extra nginx per revision: ``api-gateway-service/config/nginx.conf`` and ``templates/`` taken from
that commit (``git show REV:...``, ``WORKTREE`` for the files as they are on disk), rendered by
the gateway's own ``render_config.py`` with the fleet's gateway environment on a free port, and
started with ``run_local.py``'s command line (its access log to /dev/null, the same for every
revision). Every instance proxies to the SAME running services.

Each round measures, for each request, every revision back to back, the order rotating from one
round to the next (so each revision takes each place equally often over ``len(REVS)`` rounds):

- ``GET /api/products/{id}`` (16 connections, wrk's static request);
- ``POST /api/orders`` (16 connections, the customers' tokens in rotation, a new Idempotency-Key
  per request: bench.wrk's order script; one item of a product with a billion in stock).

A ratio divides a revision's req/s by the first revision's, in the same round; the figures are
medians over the rounds. The CPU time per request of the nginx instance (master and workers) and
of the service that answered is recorded too (time spent running, not waiting for a core).
Settings: ``BENCH_ROUNDS`` (default 6), ``BENCH_SECONDS`` (default 10), ``BENCH_CONNECTIONS``
(default 16). Output: a Markdown table on stdout and ``BENCH_RESULTS_DIR/gateway-configs.json``
(``python -m bench.gateway_configs --table FILE`` prints the table of a saved one again).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import fleet as runner  # noqa: E402
import httpx  # noqa: E402

from bench.fixtures import Fixtures, make_fixtures  # noqa: E402
from bench.fleet_access import RAISED_LIMITS, Target, fleet_target  # noqa: E402
from bench.measure_orders import order_body  # noqa: E402
from bench.processes import cpu_seconds, listening_pid  # noqa: E402
from bench.report import say  # noqa: E402
from bench.wrk import WrkResult, order_script, require_wrk, run_wrk, summary_script  # noqa: E402

GATEWAY_DIR = ROOT / "api-gateway-service"
CONFIG_FILES = (
    "config/nginx.conf",
    "config/templates/gateway.conf.template",
    "config/templates/upstreams.conf.template",
)


def _load(name: str) -> ModuleType:
    """One of the gateway's scripts (standard library only), imported from its folder."""
    scripts = GATEWAY_DIR / "scripts"
    if str(scripts) not in sys.path:
        sys.path.insert(0, str(scripts))
    spec = importlib.util.spec_from_file_location(name, scripts / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config_text(rev: str, path: str) -> str:
    if rev == "WORKTREE":
        return (GATEWAY_DIR / path).read_text()
    return subprocess.run(
        ["git", "show", f"{rev}:api-gateway-service/{path}"],  # noqa: S607 - git on PATH
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@dataclass
class Instance:
    """One nginx started from one revision's configuration."""

    rev: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The master and its workers."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [self.process.pid, *(int(pid) for pid in children.read_text().split())]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_instance(target: Target, rev: str) -> Instance:
    """Render ``rev``'s gateway configuration for the fleet's services and start nginx on it."""
    render_config: Any = _load("render_config")
    run_local: Any = _load("run_local")
    workdir = Path(tempfile.mkdtemp(prefix=f"gateway-{rev[:8]}-"))
    templates = workdir / "templates"
    templates.mkdir()
    for path in CONFIG_FILES:
        destination = workdir / Path(path).name
        if path.startswith("config/templates/"):
            destination = templates / Path(path).name
        destination.write_text(_config_text(rev, path))
    port = _free_port()
    env = {
        **target.config.environ,
        **runner.gateway_env(target.config),
        **RAISED_LIMITS,
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
    }
    render_config.render_templates(templates, workdir / "conf.d", env)
    run_local.prepare_static(workdir / render_config.DEFAULTS["GATEWAY_STATIC_DIR"])
    nginx = run_local.find_nginx("nginx")
    command = run_local.nginx_command(nginx, workdir, workdir / "nginx.conf", check=False)
    check = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed for {rev}:\n{check.stderr}")
    log = (workdir / "error.log").open("wb")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    instance = Instance(rev, port, workdir, process)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{instance.url}/healthz", timeout=1).status_code == 200:
                return instance
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    instance.stop()
    raise RuntimeError(f"the gateway of {rev} did not answer /healthz")


@dataclass
class Run:
    rev: str
    what: str
    round: int
    position: int
    result: WrkResult
    nginx_cpu_us: float
    service_cpu_us: float


def _measured(
    instance: Instance,
    what: str,
    path: str,
    script: Path,
    service_pid: int,
    seconds: float,
    connections: int,
) -> tuple[WrkResult, float, float]:
    pids = instance.pids()
    nginx_before = sum(cpu_seconds(pid) for pid in pids)
    service_before = cpu_seconds(service_pid)
    result = run_wrk(
        f"{instance.url}{path}", script=script, seconds=seconds, connections=connections
    )
    count = max(result.requests, 1)
    nginx_us = (sum(cpu_seconds(pid) for pid in pids) - nginx_before) / count * 1e6
    service_us = (cpu_seconds(service_pid) - service_before) / count * 1e6
    if result.errors:
        raise RuntimeError(
            f"{what} via {instance.rev}: {result.errors} errors, answers {result.codes}, "
            f"{' / '.join(result.error_samples)[:300]}"
        )
    return result, nginx_us, service_us


def _first_order(instance: Instance, fixtures: Fixtures, body: str) -> None:
    response = httpx.post(
        f"{instance.url}/api/orders",
        content=body,
        headers={
            "Authorization": f"Bearer {fixtures.customer_tokens[0]}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"bench-first-{uuid.uuid4().hex}",
        },
        timeout=30,
    )
    if response.status_code != 201:
        raise RuntimeError(f"first order via {instance.rev}: {response.status_code}")


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def measure(revs: list[str], rounds: int, seconds: float, connections: int) -> dict[str, Any]:
    require_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="bench-gateway-configs-"))
    instances: list[Instance] = []
    try:
        with fleet_target() as target:
            say("making products and customers")
            fixtures = make_fixtures(target, customers=32)
            for rev in revs:
                instances.append(start_instance(target, rev))
                say(f"{rev}: nginx on port {instances[-1].port}")
            catalog_pid = listening_pid(target.port(runner.CATALOG))
            orders_pid = listening_pid(target.port(runner.ORDERS))
            assert catalog_pid is not None
            assert orders_pid is not None
            body = order_body(fixtures.order_product["id"])
            get_script = summary_script(workdir)
            post_script = order_script(workdir, tokens=fixtures.customer_tokens, body=body)
            requests = {
                "GET /api/products/{id}": (
                    f"/api/products/{fixtures.read_product['id']}",
                    get_script,
                    catalog_pid,
                ),
                "POST /api/orders": ("/api/orders", post_script, orders_pid),
            }
            for instance in instances:
                _first_order(instance, fixtures, body)
                for path, script, pid in requests.values():
                    _measured(instance, "warm-up", path, script, pid, 5, connections)
            load_before = _load_average()
            say(f"load average before: {load_before}")
            runs: list[Run] = []
            for number in range(rounds):
                shift = number % len(instances)
                order = instances[shift:] + instances[:shift]
                for what, (path, script, pid) in requests.items():
                    for position, instance in enumerate(order):
                        result, nginx_us, service_us = _measured(
                            instance, what, path, script, pid, seconds, connections
                        )
                        runs.append(
                            Run(
                                instance.rev,
                                what,
                                number + 1,
                                position,
                                result,
                                nginx_us,
                                service_us,
                            )
                        )
                        say(
                            f"round {number + 1} {what} {instance.rev}: {result.rps:.0f} req/s, "
                            f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, nginx "
                            f"{nginx_us:.0f} us/req, service {service_us:.0f} us/req"
                        )
            load_after = _load_average()
            say(f"load average after: {load_after}")
    finally:
        for instance in instances:
            instance.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "revs": revs,
        "rounds": rounds,
        "seconds": seconds,
        "connections": connections,
        "load_before": load_before,
        "load_after": load_after,
        "runs": [
            {
                "rev": run.rev,
                "what": run.what,
                "round": run.round,
                "position": run.position,
                **run.result.as_json(),
                "nginx_cpu_us": round(run.nginx_cpu_us, 1),
                "service_cpu_us": round(run.service_cpu_us, 1),
            }
            for run in runs
        ],
    }


def _ratios(runs: list[dict[str, Any]], rev: str, base_rev: str, key: str) -> list[float]:
    base = {run["round"]: run[key] for run in runs if run["rev"] == base_rev}
    return [run[key] / base[run["round"]] for run in runs if run["rev"] == rev]


def _spread(values: list[float], digits: int) -> str:
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def table(data: dict[str, Any]) -> str:
    """Medians per revision and request, and the medians of per-round ratios to the first."""
    revs: list[str] = data["revs"]
    lines = [
        "| request | config | req/s, median (min-max) | req/s ratio to first, median of rounds "
        "(min-max) | p50 ms | p99 ms | nginx CPU µs/req | nginx CPU ratio to first | "
        "service CPU µs/req | service CPU ratio to first |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for what in dict.fromkeys(run["what"] for run in data["runs"]):
        runs = [run for run in data["runs"] if run["what"] == what]
        for rev in revs:
            mine = [run for run in runs if run["rev"] == rev]

            def med(key: str, mine: list[dict[str, Any]] = mine) -> float:
                return float(statistics.median(run[key] for run in mine))

            lines.append(
                f"| {what} | {rev} | {_spread([run['rps'] for run in mine], 0)} | "
                f"{_spread(_ratios(runs, rev, revs[0], 'rps'), 3)} | "
                f"{med('p50_ms'):.1f} | {med('p99_ms'):.1f} | {med('nginx_cpu_us'):.0f} | "
                f"{_spread(_ratios(runs, rev, revs[0], 'nginx_cpu_us'), 2)} | "
                f"{med('service_cpu_us'):.0f} | "
                f"{_spread(_ratios(runs, rev, revs[0], 'service_cpu_us'), 2)} |"
            )
    return "\n".join(lines)


def main() -> int:
    revs = sys.argv[1:]
    if len(revs) == 2 and revs[0] == "--table":
        # The table again, from a saved gateway-configs.json (say against another base).
        print(table(json.loads(Path(revs[1]).read_text())))
        return 0
    if not revs:
        print(__doc__, file=sys.stderr)
        return 2
    data = measure(
        revs,
        rounds=int(os.environ.get("BENCH_ROUNDS", "6")),
        seconds=float(os.environ.get("BENCH_SECONDS", "10")),
        connections=int(os.environ.get("BENCH_CONNECTIONS", "16")),
    )
    results = Path(os.environ.get("BENCH_RESULTS_DIR", ROOT / "bench-results"))
    results.mkdir(parents=True, exist_ok=True)
    (results / "gateway-configs.json").write_text(json.dumps(data, indent=1))
    print(f"load average before {data['load_before']}, after {data['load_after']}")
    print(table(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
