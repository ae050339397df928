"""Run every test suite of the fleet, one after another, and print one summary line per suite.

Each suite runs in its own folder with its own venv (``make lint test`` there). A suite fails when
its command fails or when it ran no test. The last line reads ``total: N passed, N failed``.

Every suite runs its tests in a random order (pytest-randomly), the same seed for all: it is printed
first and last, and ``SEED=N`` (``make test SEED=N``) replays that order.

Consumer-driven contracts: a service's suite runs after the suites of the services that call it
(its consumers); their tests write their pacts into their own repositories
(``<consumer>/src/pacts/<consumer>-<provider>.json``, the published contracts). Before a
provider's suite, each of those files is copied to ``<provider>/src/tests/contract/pacts/`` (only
when its content differs), where the provider's suite verifies it against the real provider.
order-processing-service is both: chat-llm-service runs first, its pacts are copied to
order-processing-service, which runs, and then the pacts of both are copied to user-service and
product-catalog-service, which run. Between separate repositories a Pact Broker plays that part.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
# A pytest summary line ("===== 3 passed, 1 deselected in 1.20s ====="), from the line's start:
# a failure message that quotes another pytest's summary indents it, and that is not this suite's.
SUMMARY = re.compile(r"^=+ (?P<counts>.+?) in (?P<seconds>[\d.]+)s(?: \([^)]*\))? =+$")
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")


@dataclass
class Result:
    name: str
    returncode: int
    counts: dict[str, int]
    seconds: float
    failures: list[str]

    @property
    def passed(self) -> int:
        return self.counts.get("passed", 0)

    @property
    def failed(self) -> int:
        return sum(self.counts.get(key, 0) for key in ("failed", "error", "errors"))

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0 and self.passed > 0


# Consumers publish pacts, providers verify them: each service runs after its consumers.
# order-processing-service is a provider (of chat-llm-service) and a consumer (of the other two).
CONSUMERS = ("chat-llm-service", "order-processing-service")
PROVIDERS = ("order-processing-service", "user-service", "product-catalog-service")
SERVICES = (
    "chat-llm-service",
    "order-processing-service",
    "user-service",
    "product-catalog-service",
)
# The providers whose copies are brought up to date together, before the first of their suites.
SYNC_GROUPS = (("order-processing-service",), ("user-service", "product-catalog-service"))


def suites(
    make_args: list[str], targets: tuple[str, ...] = ("lint", "test")
) -> list[tuple[str, list[str]]]:
    plan = [("common-libs", ["make", "-C", "common-libs", *targets, *make_args])]
    plan += [(name, ["make", "-C", f"{name}/src", *targets, *make_args]) for name in SERVICES]
    plan.append(
        ("api-gateway-service", ["make", "-C", "api-gateway-service", *targets, *make_args])
    )
    plan.append(("e2e", ["make", "-C", "e2e", *targets, *make_args]))
    # Every repository exported alone, with only the common-libs wheel, passes its README's tests.
    plan.append(("exported-repositories", ["make", "-C", "e2e", "test-exports", *make_args]))
    return plan


def new_seed() -> int:
    """A seed for pytest-randomly's order of the tests."""
    return secrets.randbelow(2**31 - 1) + 1


def with_seed(seed: int) -> dict[str, str]:
    """The environment whose pytest runs order their tests with ``seed`` (pytest-randomly)."""
    addopts = os.environ.get("PYTEST_ADDOPTS", "")
    return {**os.environ, "PYTEST_ADDOPTS": f"{addopts} --randomly-seed={seed}".strip()}


def run(name: str, argv: list[str], env: dict[str, str], out: TextIO = sys.stdout) -> Result:
    """Run one suite, its output to ``out``; ``failures`` are its FAILED and ERROR lines."""
    print(f"\n===== {name}: {' '.join(argv[:3])} ... =====", file=out, flush=True)
    started = time.monotonic()
    counts: dict[str, int] = {}
    failures: list[str] = []
    with subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            if line.startswith(("FAILED ", "ERROR ")):
                failures.append(line.strip())
            match = SUMMARY.match(line.rstrip())
            # A suite may run more than one pytest (the catalog runs its minute-long test beside
            # the rest): its counts are the sum of their summaries.
            if match:
                for number, kind in _COUNT.findall(match["counts"]):
                    key = kind.rstrip("s") if kind.startswith("error") else kind
                    counts[key] = counts.get(key, 0) + int(number)
    out.flush()
    return Result(name, process.returncode, counts, time.monotonic() - started, failures)


_SECTION = re.compile(r"^=+ (.+?) =+$")
_TEST_HEADER = re.compile(r"^_{3,} .+ _{3,}$")
_CAPTURED = re.compile(r"^-{3,} Captured .+ -{3,}$")


def failure_report(output: str, limit: int = 12000) -> str:
    """What pytest said of the tests that failed: from its FAILURES (or ERRORS) section on, each
    test's traceback without the output it captured, then the short summary; the last ``limit``
    characters of that. A failed suite's tail is mostly captured logs (a consumer's retries) and
    hid the assertion. Without such a section (the install failed), the output's tail."""
    lines = output.splitlines()
    start = next(
        (
            index
            for index, line in enumerate(lines)
            if (section := _SECTION.match(line)) and section[1] in ("FAILURES", "ERRORS")
        ),
        None,
    )
    if start is None:
        return output[-limit:]
    kept: list[str] = []
    captured = False
    for line in lines[start:]:
        if _CAPTURED.match(line):
            captured = True
        elif _TEST_HEADER.match(line) or _SECTION.match(line):
            captured = False
        if not captured:
            kept.append(line)
    return "\n".join(kept)[-limit:]


def sync_pacts(providers: tuple[str, ...]) -> None:
    """Copy each consumer's published pacts to ``providers``, which verify them (a broker's job)."""
    print("\n===== pact sync: consumers' pacts -> providers' contract tests =====", flush=True)
    for consumer in CONSUMERS:
        for provider in providers:
            for source in sorted((ROOT / consumer / "src" / "pacts").glob(f"*-{provider}.json")):
                target = ROOT / provider / "src" / "tests" / "contract" / "pacts" / source.name
                if target.exists() and target.read_bytes() == source.read_bytes():
                    outcome = "unchanged"
                else:
                    outcome = "updated" if target.exists() else "added"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target)
                print(f"{source.relative_to(ROOT)} -> {target.relative_to(ROOT)}: {outcome}")


def main() -> int:
    make_args = sys.argv[1:]
    only = os.environ.get("SUITES")
    plan = [s for s in suites(make_args) if not only or s[0] in only.split(",")]
    given = os.environ.get("SEED", "")
    if given and not given.isdigit():
        print(f"SEED must be a whole number (the one a run printed), not {given!r}")
        return 2
    seed = int(given or new_seed())
    replay = f"test order: random, seed {seed} (replay: make test SEED={seed})"
    print(replay, flush=True)
    env = with_seed(seed)
    results = []
    synced: set[tuple[str, ...]] = set()
    for name, argv in plan:
        group = next((group for group in SYNC_GROUPS if name in group), None)
        if group is not None and group not in synced:
            sync_pacts(group)
            synced.add(group)
        results.append(run(name, argv, env))
    print(
        "\n" + f"{'suite':<26} {'result':<8} {'passed':>7} {'failed':>7} {'skipped':>8} {'time':>8}"
    )
    for r in results:
        verdict = (
            "ok" if r.ok else ("NO TESTS" if r.returncode == 0 and r.passed == 0 else "FAILED")
        )
        skipped = r.counts.get("skipped", 0)
        print(
            f"{r.name:<26} {verdict:<8} {r.passed:>7} {r.failed:>7} {skipped:>8} {r.seconds:>7.1f}s"
        )
    passed = sum(r.passed for r in results)
    failed = sum(r.failed for r in results) + sum(1 for r in results if not r.ok and r.failed == 0)
    print(replay)
    print(f"total: {passed} passed, {failed} failed")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
