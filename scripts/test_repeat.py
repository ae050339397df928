"""Run one suite many times under load, in a new random order each time: the flaky-test hunt.

``make test-repeat SUITE=<suite> N=<runs>`` (``HOG=<processes>``, default 1) runs the suite's
``make test`` N times, one after another, while HOG processes spin on the CPU beside it (a loaded
CI machine). Each run orders its tests with a seed of its own (pytest-randomly), and its output goes
to ``test-repeat/<suite>/run-<i>-seed-<seed>.log``. It prints one line per run, then the seed and
the failed tests of each failed run (replay one: ``make test SEED=<seed> SUITES=<suite>``). The
exit status is 1 when any run failed or ran no test. ``SUITE`` is a name ``make test`` prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from run_suites import ROOT, new_seed, run, suites, with_seed

OUT = ROOT / "test-repeat"


@contextmanager
def cpu_hog(processes: int) -> Iterator[None]:
    """``processes`` Python processes that keep a core busy each until the block ends."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def main() -> int:
    name, runs = os.environ.get("SUITE", ""), int(os.environ.get("N", "10"))
    hog = int(os.environ.get("HOG", "1"))
    make_args = sys.argv[1:]
    plan = dict(suites(make_args, targets=("test",)))
    if name not in plan or runs < 1 or hog < 0:
        print(f"usage: make test-repeat SUITE=<{'|'.join(plan)}> N=<runs> [HOG=<processes>]")
        return 2
    logs = OUT / name
    logs.mkdir(parents=True, exist_ok=True)
    print(f"{name}: {runs} runs, each in a random order, beside {hog} CPU hog(s); logs in {logs}")
    failed: list[tuple[int, int, list[str]]] = []
    with cpu_hog(hog):
        for index in range(1, runs + 1):
            seed = new_seed()
            log = logs / f"run-{index}-seed-{seed}.log"
            with log.open("w") as out:
                result = run(name, plan[name], with_seed(seed), out)
            verdict = "ok" if result.ok else "FAILED"
            print(
                f"run {index:>2}/{runs}: {verdict:<6} seed {seed:<10} {result.passed:>5} passed "
                f"{result.failed:>3} failed {result.seconds:7.1f}s",
                flush=True,
            )
            if not result.ok:
                failed.append((index, seed, result.failures or [f"see {log.relative_to(ROOT)}"]))
    print(f"\n{name}: {runs} runs, {len(failed)} failed")
    for index, seed, failures in failed:
        print(f"run {index} (replay: SEED={seed} make test SUITES={name}):")
        for failure in failures:
            print(f"  {failure}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
