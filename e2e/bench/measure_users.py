"""Item 9: user-service's authenticated read, ``GET /users/me``, at 16 connections.

wrk asks straight to user-service with a token from the list of logged-in customers per request
(each reads its own account). The figures: user-service's CPU time per request (``/proc``, the
process that listens on its port), the database connections it opened per 1,000 requests
(PostgreSQL's own count, ``pg_stat_database.sessions`` of its database: a pool too small for the
load opens and closes connections as it goes), its requests per second and p99.
"""

from __future__ import annotations

from pathlib import Path

import fleet as runner

from bench.fixtures import Fixtures
from bench.fleet_access import Target
from bench.processes import cpu_seconds, listening_pid
from bench.report import Row, at_most, median, say
from bench.runs import Settings
from bench.wrk import WrkResult, bearer_script, run_wrk

__all__ = ["measure_users"]


def measure_users(
    target: Target, fixtures: Fixtures, settings: Settings, workdir: Path
) -> list[Row]:
    """CPU per request, connections opened per 1,000 requests, req/s and p99, over the rounds."""
    url = f"{target.url(runner.USERS)}/users/me"
    script = bearer_script(workdir, tokens=fixtures.customer_tokens)
    pid = listening_pid(target.port(runner.USERS))
    if pid is None:
        raise RuntimeError("no process listens on user-service's port")
    connections = settings.connections
    run_wrk(url, script=script, seconds=1, connections=connections)  # warm-up
    results: list[WrkResult] = []
    cpu_us: list[float] = []
    opened: list[float] = []
    for number in range(settings.rounds):
        sessions, cpu = target.sessions(runner.USERS), cpu_seconds(pid)
        result = run_wrk(url, script=script, seconds=settings.seconds, connections=connections)
        if result.errors or not result.requests:
            samples = " / ".join(result.error_samples)[:300]
            raise RuntimeError(f"9 users: {result.errors} failed requests ({samples})")
        cpu_us.append((cpu_seconds(pid) - cpu) / result.requests * 1e6)
        opened.append((target.sessions(runner.USERS) - sessions) / result.requests * 1000)
        results.append(result)
        say(
            f"9 users run {number + 1}: {result.rps:.0f} req/s, p99 {result.p99_ms:.1f} ms, "
            f"{cpu_us[-1]:.0f} µs of CPU per request, {opened[-1]:.1f} connections opened "
            "per 1,000 requests"
        )
    how = (
        f"wrk -t1 -c{connections}, {settings.rounds} runs of {settings.seconds:g} s after a 1 s "
        f"warm-up, GET /users/me straight to user-service, {len(fixtures.customer_tokens)} "
        f"customers' tokens in rotation; {median(r.rps for r in results):.0f} req/s, p50 "
        f"{median(r.p50_ms for r in results):.2f} ms, p99 {median(r.p99_ms for r in results):.1f} "
        "ms (medians of the runs)"
    )
    cpu_row = at_most(
        9, "Users: GET /users/me CPU per request, 16 connections", median(cpu_us), "µs", 700
    )
    cpu_row.detail = f"{how}; user-service's CPU time (/proc) over the requests answered"
    cpu_row.runs = [result.as_json() for result in results]
    opened_row = Row(
        9,
        "Users: database connections opened per 1,000 GET /users/me",
        round(median(opened), 1),
        "",
        "none set",
        "info",
    )
    opened_row.detail = (
        "PostgreSQL's count of sessions opened on user-service's database "
        "(pg_stat_database.sessions) over each run, per 1,000 requests, median of the runs (a "
        "connection that stays open is counted when its backend reports, within about 10 s)"
    )
    return [cpu_row, opened_row]
