#!/usr/bin/env python3
"""Throughput through the gateway relative to the upstream alone, for a small GET, with wrk.

Starts the test suite's uvicorn stub (one process) and nginx from this repository's configuration
(through scripts/run_local.py, rate limits raised out of the way), then alternates wrk runs against
the stub directly and through the gateway, a few seconds each. Each round gives one ratio
(gateway requests/s divided by direct requests/s, measured back to back); the figure is the median
of the rounds. Both sides share the same machine, so the ratio, not the absolute numbers, is what
carries over to another machine.

Usage: ``.venv/bin/python bench/bench_gateway.py [--duration 3] [--rounds 3]`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import functools
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SERVICE_DIR = Path(__file__).resolve().parent.parent
# The stub and the process helpers are the test suite's; the benchmark reuses them.
sys.path.insert(0, str(SERVICE_DIR / "tests"))

from support.servers import Gateway, Stub, start_gateway, start_stubs  # noqa: E402

_REQUESTS_PER_SECOND = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_ERRORS = re.compile(r"^\s*(Non-2xx or 3xx responses|Socket errors):.*$", re.M)

# Far above what wrk can reach here: the benchmark measures proxying, not the limiter.
_UNLIMITED = {
    "GATEWAY_RATE_LIMIT": "1000000r/s",
    "GATEWAY_RATE_BURST": "1000000",
}


@dataclass(frozen=True)
class Round:
    """One back-to-back pair of measurements."""

    direct: float
    gateway: float

    @property
    def ratio(self) -> float:
        """Gateway throughput relative to direct."""
        return self.gateway / self.direct


def run_wrk(url: str, *, duration: float, connections: int, threads: int) -> float:
    """Run wrk against ``url``; return requests per second (any failed request is an error)."""
    result = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration:g}s",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    )
    errors = _ERRORS.findall(result.stdout)
    if errors:
        raise RuntimeError(f"wrk saw failures against {url}:\n{result.stdout}")
    match = _REQUESTS_PER_SECOND.search(result.stdout)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{result.stdout}")
    return float(match.group(1))


def measure(
    stub: Stub, gateway: Gateway, *, rounds: int, duration: float, connections: int, threads: int
) -> list[Round]:
    """Alternate direct and gateway runs; the order flips every round to cancel drift."""
    direct_url = f"{stub.url}/products/_small"
    gateway_url = f"{gateway.url}/api/products/_small"
    wrk = functools.partial(run_wrk, connections=connections, threads=threads)
    for url in (direct_url, gateway_url):
        wrk(url, duration=1)  # warm-up: connections, keep-alive pools, caches
    results: list[Round] = []
    for index in range(rounds):
        if index % 2 == 0:
            direct = wrk(direct_url, duration=duration)
            through = wrk(gateway_url, duration=duration)
        else:
            through = wrk(gateway_url, duration=duration)
            direct = wrk(direct_url, duration=duration)
        results.append(Round(direct=direct, gateway=through))
        print(
            f"round {index + 1}: direct {direct:8.0f} req/s, gateway {through:8.0f} req/s, "
            f"ratio {through / direct:.2f}",
            flush=True,
        )
    return results


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="back-to-back pairs (default 3)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the servers, measure, print the median ratio."""
    args = _parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (Debian package: wrk)", file=sys.stderr)
        return 1
    log_dir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    stubs = start_stubs(log_dir, names=("catalog",))
    stub = stubs["catalog"]
    gateway: Gateway | None = None
    try:
        addresses = dict.fromkeys(("user", "catalog", "order", "chat"), stub.address)
        gateway = start_gateway(
            log_dir=log_dir, upstreams=addresses, overrides=_UNLIMITED, name="gateway-bench"
        )
        rounds = measure(
            stub,
            gateway,
            rounds=args.rounds,
            duration=args.duration,
            connections=args.connections,
            threads=args.threads,
        )
    finally:
        if gateway is not None:
            gateway.stop()
        stub.process.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
    median = statistics.median(result.ratio for result in rounds)
    print(
        f"gateway/direct, small GET, median of {len(rounds)} rounds of {args.duration:g} s "
        f"({args.connections} connections): {median:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
