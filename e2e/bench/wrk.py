"""wrk runs, bounded in time, summarised by a Lua ``done()`` that prints one JSON line.

Every run gets the same summary (requests, duration, errors, p50/p99 latency from wrk's own
histogram). ``order_script`` adds what ``POST /orders`` needs: a token per request from a list,
a unique ``Idempotency-Key`` per request (run nonce, wrk thread, counter), and a count of the
answers by status, so that anything but a 2xx counts as an error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "WrkResult",
    "bearer_script",
    "order_script",
    "require_wrk",
    "run_wrk",
    "summary_script",
]

_MARK = "BENCH_SUMMARY "
_ERROR_MARK = "BENCH_FIRST_ERROR "

# The summary every script ends with. Per-thread counters (``codes``, set by ``response`` in
# the order script) live in each thread's Lua state; ``setup`` keeps the threads to read them.
_SUMMARY_LUA = r"""
local bench_threads = {}
local bench_thread_count = 0

function setup(thread)
  bench_thread_count = bench_thread_count + 1
  thread:set("tid", bench_thread_count)
  table.insert(bench_threads, thread)
end

function done(summary, latency, requests)
  local codes = {}
  for _, thread in ipairs(bench_threads) do
    local counted = thread:get("codes")
    if counted then
      for status, count in pairs(counted) do
        codes[status] = (codes[status] or 0) + count
      end
    end
  end
  local parts = {}
  for status, count in pairs(codes) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    '__MARK__{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d, "p50_us": %.1f, "p99_us": %.1f, "codes": {%s}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), table.concat(parts, ", ")))
  for _, thread in ipairs(bench_threads) do
    local sample = thread:get("first_error")
    if sample then
      io.write("__ERROR__" .. string.gsub(sample, "[\r\n]", " ") .. "\n")
    end
  end
end
""".replace("__MARK__", _MARK).replace("__ERROR__", _ERROR_MARK)

_ORDER_LUA = r"""
local tokens = {__TOKENS__}
local body = [==[__BODY__]==]
local nonce = "__NONCE__"
local counter = 0
codes = {}

function request()
  counter = counter + 1
  local headers = {
    ["Authorization"] = "Bearer " .. tokens[(counter % #tokens) + 1],
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = nonce .. "-" .. tid .. "-" .. counter,
  }
  return wrk.format("POST", nil, headers, body)
end
"""

# A GET with a token from a list per request (user-service's GET /users/me).
_BEARER_LUA = r"""
local tokens = {__TOKENS__}
local counter = 0
codes = {}

function request()
  counter = counter + 1
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. tokens[(counter % #tokens) + 1]})
end
"""

# Counts the answers by status and keeps the first failed one (the scripts with a token).
_COUNTING_LUA = r"""
function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
  if (status < 200 or status > 299) and first_error == nil then
    first_error = status .. " " .. string.sub(body or "", 1, 300)
  end
end
"""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles and every kind of failure."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    status_errors: int
    codes: dict[int, int] = field(default_factory=dict)
    # The first non-2xx answer a thread saw (status and the start of its body), if counted.
    error_samples: tuple[str, ...] = ()

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds

    @property
    def non_2xx(self) -> int:
        """Answers outside 200..299 (counted by status when the script counts them)."""
        if self.codes:
            return sum(count for code, count in self.codes.items() if not 200 <= code < 300)
        return self.status_errors

    @property
    def errors(self) -> int:
        """Failed requests: socket errors, timeouts and non-2xx answers."""
        return self.socket_errors + self.non_2xx

    def as_json(self) -> dict[str, object]:
        """The figures of this run, for bench.json."""
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "errors": self.errors,
            "codes": {str(code): count for code, count in sorted(self.codes.items())},
            "error_samples": list(self.error_samples),
        }


def require_wrk() -> str:
    """wrk's path, or a clear error (Debian package ``wrk``)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    return wrk


def summary_script(workdir: Path) -> Path:
    """A script that only summarises (requests stay wrk's fast static ones)."""
    path = workdir / "summary.lua"
    path.write_text(_SUMMARY_LUA)
    return path


def order_script(workdir: Path, *, tokens: list[str], body: str) -> Path:
    """A ``POST`` script rotating ``tokens``, with a fresh Idempotency-Key for every request."""
    if "]==]" in body:
        raise ValueError("the body cannot be quoted as a Lua long string")
    nonce = f"bench-{uuid.uuid4().hex[:12]}"
    script = (
        _ORDER_LUA.replace("__TOKENS__", ", ".join(json.dumps(token) for token in tokens))
        .replace("__BODY__", body)
        .replace("__NONCE__", nonce)
    )
    path = workdir / f"orders-{nonce}.lua"
    path.write_text(script + _COUNTING_LUA + _SUMMARY_LUA)
    return path


def bearer_script(workdir: Path, *, tokens: list[str]) -> Path:
    """A ``GET`` script rotating ``tokens``, one per request, that counts answers by status."""
    script = _BEARER_LUA.replace("__TOKENS__", ", ".join(json.dumps(token) for token in tokens))
    path = workdir / f"bearer-{uuid.uuid4().hex[:12]}.lua"
    path.write_text(script + _COUNTING_LUA + _SUMMARY_LUA)
    return path


def run_wrk(
    url: str, *, script: Path, seconds: float, connections: int, threads: int = 1
) -> WrkResult:
    """Drive ``url`` for ``seconds`` (killed if it overruns by 30 s) and read the summary."""
    argv = [require_wrk(), f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s"]
    argv += ["--timeout", "10s", "-s", str(script), url]
    output = subprocess.run(
        argv, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    line = next((line for line in output.splitlines() if line.startswith(_MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary for {url}:\n{output}")
    data = json.loads(line.removeprefix(_MARK))
    samples = tuple(
        text.removeprefix(_ERROR_MARK)
        for text in output.splitlines()
        if text.startswith(_ERROR_MARK)
    )
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        status_errors=data["status"],
        codes={int(code): count for code, count in data["codes"].items()},
        error_samples=samples,
    )
