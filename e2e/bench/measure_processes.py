"""Item 7: each service's resident memory after the load, and its time from start to ``/ready``.

RSS is VmRSS of the fleet's own process of each service (the one listening on its port), read
once after the load runs. Start-to-ready starts a fresh process of each service, with the
fleet's command line and environment on a free port, and times it from the start of the
process to the first 200 of its ``/ready`` (polled every 20 ms); the median of a few starts.
"""

from __future__ import annotations

from pathlib import Path

import fleet as runner
from common_libs.testing import free_port

from bench.fleet_access import Target
from bench.processes import Process, listening_pid, rss_mib
from bench.report import Row, below, median, say

__all__ = ["measure_ready", "measure_rss"]

# Issue #22's targets: every service under 100 MiB but the chat, which holds the chat model's
# tokenizer (about 70 MiB), under 150; every start under a second.
RSS_TARGET_MIB = 100.0
RSS_TARGETS_MIB = {runner.CHAT.name: 150.0}
READY_TARGET_SECONDS = 1.0


def measure_rss(target: Target) -> list[Row]:
    """VmRSS of every service's process, now."""
    rows = []
    for service in runner.SERVICES:
        measure = f"RSS after the load: {service.name}"
        bound = RSS_TARGETS_MIB.get(service.name, RSS_TARGET_MIB)
        pid = listening_pid(target.port(service))
        if pid is None:
            reason = f"skipped: no process listens on port {target.port(service)} here"
            rows.append(Row(7, measure, None, "MiB", f"< {bound:g} MiB", "skipped", reason))
            continue
        row = below(7, measure, rss_mib(pid), "MiB", bound)
        row.detail = "VmRSS of the fleet's process of the service, after items 1-4, 6, 9 and 10"
        rows.append(row)
    return rows


def measure_ready(target: Target, workdir: Path, *, starts: int) -> list[Row]:
    """Seconds from a fresh process's start to its first ``/ready`` 200, for every service."""
    rows = []
    for service in runner.SERVICES:
        measure = f"Start to /ready: {service.name}"
        if service in (runner.USERS, runner.ORDERS) and not target.secrets:
            reason = "skipped: the fleet's secrets.json is not readable"
            rows.append(
                Row(7, measure, None, "s", f"< {READY_TARGET_SECONDS:g} s", "skipped", reason)
            )
            continue
        seconds = []
        for number in range(starts):
            port = free_port()
            process = Process(
                name=f"{service.name}-start-{number}",
                argv=target.service_command(service, port),
                cwd=service.workdir,
                env=target.service_env(service),
                log_path=workdir / f"{service.name}-start-{number}.log",
                ready_url=f"http://127.0.0.1:{port}/ready",
            )
            try:
                seconds.append(process.start())
            finally:
                process.stop()
        say(f"7 {service.name} start to /ready: {', '.join(f'{s:.2f}' for s in seconds)} s")
        row = below(7, measure, median(seconds), "s", READY_TARGET_SECONDS)
        row.detail = (
            f"median of {starts} fresh starts of the fleet's command line and environment, "
            "from the process's start to the first 200 of /ready (polled every 20 ms)"
        )
        row.runs = [round(value, 3) for value in seconds]
        rows.append(row)
    return rows
