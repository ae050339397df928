"""Each repository, exported alone with its history, installs, passes its README's tests and runs.

A service repository gets nothing from this checkout but the pinned common-libs wheel (in
``src/wheels/``, where its README and Dockerfile expect it) and runs its README's commands at its
root (its Makefile there runs src/'s); the gateway gets the same wheel in ``wheels/`` (its tests
run the fleet's repository checks from it). Each service's ``make run`` then
starts it alone (its own PostgreSQL and NATS, stand-ins for its neighbours built from its pacts)
until ``/ready`` answers and a request that needs those neighbours succeeds; Ctrl-C stops it all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import httpx
import pytest
import run_suites
from common_libs.testing.processes import free_port, wait_until

from exports.conftest import SUITE_SECONDS

ROOT = Path(__file__).resolve().parents[2]
SERVICES = (
    "user-service",
    "product-catalog-service",
    "order-processing-service",
    "chat-llm-service",
)
WHEEL = ROOT / ".wheels" / "common_libs-4.0.0-py3-none-any.whl"
UV = os.environ.get("UV", "uv")
# A suite takes 20-90 s alone and up to about twice that beside another; past this it hangs.
EXPORTED_SUITE_SECONDS = 600
_CHECKOUT_VARIABLES = frozenset(
    {
        "MAKEFLAGS",
        "MFLAGS",
        "MAKELEVEL",
        "MAKEOVERRIDES",
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "COMMON_LIBS_WHEELS",
        "UV",
        "TEST_DATABASE_URL",
    }
)
# A pytest summary that passed: "N passed", then perhaps deselected or warning counts.
_SUMMARY = re.compile(r"=+ (\d+) passed(?:, \d+ (?:deselected|warnings?))* in [\d.]+s")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every repository exported into a fresh folder outside this checkout."""
    out_dir = tmp_path_factory.mktemp("exported")
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "export_repos.py"), str(out_dir)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out_dir


def _with_wheel(repository: Path) -> None:
    """The pinned common-libs wheel where the service's README says it goes."""
    wheels = repository / "src" / "wheels"
    wheels.mkdir(exist_ok=True)
    shutil.copy(WHEEL, wheels)


def _documented(readme: Path, *commands: str) -> None:
    text = readme.read_text()
    for command in commands:
        assert command in text, f"{readme} does not document `{command}`"


def _machine_environment() -> dict[str, str]:
    # The machine's environment, less everything that belongs to this checkout: a parent make's
    # variable overrides (MAKEFLAGS carries COMMON_LIBS_WHEELS=...), its venvs, its fleet settings,
    # this pytest's own variables. PYTEST_ADDOPTS stays: it carries make test's seed, so an
    # exported suite orders its tests as `make test SEED=N` replays them.
    return {
        key: value
        for key, value in os.environ.items()
        if key not in _CHECKOUT_VARIABLES
        and not key.startswith("FLEET_")
        and (key == "PYTEST_ADDOPTS" or not key.startswith("PYTEST_"))
    }


def _passed_every_summary(output: str) -> None:
    # make test may run more than one pytest (the catalog runs its minute-long test beside the
    # rest); each printed a passing summary, and together they ran tests.
    summaries = [line for line in output.splitlines() if run_suites.SUMMARY.match(line.rstrip())]
    passed = [_SUMMARY.search(line) for line in summaries]
    assert summaries, output[-2000:]
    assert all(passed), output[-2000:]
    assert sum(int(match[1]) for match in passed if match) > 0


def _start_make(repository: Path, log: BinaryIO, *arguments: str) -> subprocess.Popen[bytes]:
    """``make <arguments>`` in an exported repository with the machine's environment, its output
    in ``log``, in a session of its own (its whole process group can be signalled)."""
    return subprocess.Popen(
        ["make", *arguments, f"UV={UV}"],
        cwd=repository,
        env=_machine_environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _run_documented_commands(workdir: Path) -> str:
    """``make venv test`` in ``workdir``, its output in ``<workdir>.make-test.log``; a run past the
    limit is stopped (its whole process group) and fails with what it printed, stacks included
    (each suite dumps a test's stacks when it outlives its ``faulthandler_timeout``)."""
    log = workdir.with_name(f"{workdir.name}.make-test.log")
    started = time.monotonic()
    with log.open("wb") as out:
        process = _start_make(workdir, out, "venv", "test")
        try:
            returncode = process.wait(timeout=EXPORTED_SUITE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            returncode = None
    SUITE_SECONDS[workdir.name] = time.monotonic() - started
    output = log.read_text(errors="replace")
    assert returncode is not None, (
        f"make venv test still ran after {EXPORTED_SUITE_SECONDS} s ({log}):\n{output[-12000:]}"
    )
    assert returncode == 0, f"make venv test failed ({log}):\n{run_suites.failure_report(output)}"
    return output


# Longest first: two at a time, they end at about the same time.
_SUITES = (
    "chat-llm-service",
    "product-catalog-service",
    "user-service",
    "order-processing-service",
    "api-gateway-service",
)


@pytest.fixture(scope="module")
def suite_runs(exported: Path) -> Iterator[dict[str, Future[str]]]:
    """Every exported repository's ``make venv test``, two at a time (the machine has two cores
    and each suite keeps about one busy), each with the wheel where its README expects it."""
    for name in SERVICES:
        _with_wheel(exported / name)
    gateway_wheels = exported / "api-gateway-service" / "wheels"
    gateway_wheels.mkdir(exist_ok=True)
    shutil.copy(WHEEL, gateway_wheels)
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {name: pool.submit(_run_documented_commands, exported / name) for name in _SUITES}


@pytest.mark.parametrize("name", SERVICES)
def test_exported_service_installs_and_passes_its_tests_alone(
    name: str, exported: Path, suite_runs: dict[str, Future[str]]
) -> None:
    repository = exported / name
    _documented(repository / "README.md", "make venv test", "make run", "CONTRACT.md")

    output = suite_runs[name].result()

    _passed_every_summary(output)
    assert (exported / name / ".github" / "workflows" / "ci-cd.yml").exists()
    assert (repository / "CONTRACT.md").exists()
    assert not (repository / "src" / "README.md").exists()


def test_exported_gateway_installs_and_passes_its_tests_alone(
    exported: Path, suite_runs: dict[str, Future[str]]
) -> None:
    _documented(exported / "api-gateway-service" / "README.md", "make test")

    output = suite_runs["api-gateway-service"].result()

    _passed_every_summary(output)


def test_exported_repositories_keep_their_history(exported: Path) -> None:
    for name in (*SERVICES, "api-gateway-service", "common-libs"):
        count = subprocess.run(
            ["git", "rev-list", "--count", "HEAD"],
            cwd=exported / name,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert int(count) > 1, name
        assert not (exported / name / "e2e").exists()


# --- make run: the service alone, with stand-ins for its neighbours -------------------------------


@dataclass(frozen=True)
class Run:
    """What ``make run`` wrote to ``src/.run/run.json`` once the service was ready."""

    src: Path
    service_url: str
    tokens_url: str | None
    ports: tuple[int, ...]

    @classmethod
    def read(cls, path: Path) -> Run:
        data = json.loads(path.read_text())
        urls = [data["service"]["url"], *data["stand_ins"].values()]
        urls += [data[key] for key in ("tokens_url", "llm_url", "nats_url") if data.get(key)]
        urls.append(data["database_url"])
        return cls(
            src=path.parent.parent,
            service_url=data["service"]["url"],
            tokens_url=data.get("tokens_url"),
            ports=tuple(sorted({urlsplit(url).port or 0 for url in urls} - {0})),
        )

    def token(self, client: httpx.Client, role: str) -> dict[str, str]:
        assert self.tokens_url is not None, "no token stand-in"
        answer = client.get(self.tokens_url, params={"role": role})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def _make_run(repository: Path, log_path: Path) -> Iterator[Run]:
    """``make run`` in the repository, until its service is ready; Ctrl-C (SIGINT to the terminal's
    process group) afterwards, which must stop everything it started."""
    run_file = repository / "src" / ".run" / "run.json"
    run_file.unlink(missing_ok=True)
    with log_path.open("wb") as log:
        process = _start_make(repository, log, "run", f"PORT={free_port()}")
    try:
        wait_until(
            lambda: run_file.exists() or process.poll() is not None,
            timeout=300,
            message="make run writes .run/run.json",
        )
        assert process.poll() is None, log_path.read_text()[-4000:]
        run = Run.read(run_file)
        yield run
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        returncode = process.wait(timeout=90)
    output = log_path.read_text()
    # make itself dies of the SIGINT (after its child, the runner, has stopped), as in a terminal.
    assert returncode in (0, -signal.SIGINT), output[-4000:]
    assert "standalone | everything it started has stopped" in output, output[-4000:]
    still_listening = [port for port in run.ports if _listening(port)]
    assert not still_listening, f"still listening after Ctrl-C: {still_listening}"


def _sign_up_and_log_in(client: httpx.Client, run: Run) -> None:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    created = client.post(
        f"{run.service_url}/users",
        json={"email": email, "password": "a long passphrase", "full_name": "Ann"},
    )
    assert created.status_code == 201, created.text
    login = client.post(
        f"{run.service_url}/auth/token",
        data={"username": email, "password": "a long passphrase"},
    )
    assert login.status_code == 200, login.text
    assert login.json()["access_token"]


def _create_a_product(client: httpx.Client, run: Run) -> None:
    product = {
        "sku": f"RUN-{uuid.uuid4().hex[:10].upper()}",
        "name": "Stand-alone Kettle",
        "description": "Made by the exported repository's own make run.",
        "category": "kitchen",
        "price": "24.50",
        "stock": 3,
    }
    created = client.post(
        f"{run.service_url}/products", json=product, headers=run.token(client, "admin")
    )
    assert created.status_code == 201, created.text
    read = client.get(f"{run.service_url}/products/{created.json()['id']}")
    assert read.status_code == 200, read.text
    assert read.json()["sku"] == product["sku"]


def _pact_bodies(pact: Path, part: str) -> list[Any]:
    """The example bodies of ``part`` (request or response) of every interaction of a pact."""
    interactions = json.loads(pact.read_text())["interactions"]
    return [i[part]["body"]["content"] for i in interactions if i[part].get("body")]


def _place_an_order(client: httpx.Client, run: Run) -> None:
    # A product the catalog stand-in holds stock of: the one the pact reserves.
    pact = run.src / "pacts" / "order-processing-service-product-catalog-service.json"
    product_id = _pact_bodies(pact, "request")[0]["items"][0]["product_id"]
    headers = {**run.token(client, "customer"), "Idempotency-Key": uuid.uuid4().hex}
    body = {
        "items": [{"product_id": product_id, "quantity": 1}],
        "shipping_address": {
            "name": "Grace Hopper",
            "line1": "1 Navy Yard Road",
            "city": "Arlington",
            "postal_code": "22202",
            "country": "US",
        },
    }
    placed = client.post(f"{run.service_url}/orders", json=body, headers=headers)
    assert placed.status_code == 201, placed.text
    assert placed.json()["status"] == "confirmed", placed.text
    read = client.get(f"{run.service_url}/orders/{placed.json()['id']}", headers=headers)
    assert read.json()["status"] == "confirmed", read.text


def _a_grounded_chat_turn(client: httpx.Client, run: Run) -> None:
    # The read model was filled from the catalog stand-in: the answer names its product.
    pact = run.src / "pacts" / "chat-llm-service-product-catalog-service.json"
    (page,) = _pact_bodies(pact, "response")
    name = page["items"][0]["name"]
    turn = client.post(
        f"{run.service_url}/chat/generate_response",
        json={"message": f"Do you have {name.lower()}?"},
        headers=run.token(client, "customer"),
    )
    assert turn.status_code == 200, turn.text
    assert name in turn.json()["message"]["content"], turn.text


DEMOS: dict[str, Callable[[httpx.Client, Run], None]] = {
    "user-service": _sign_up_and_log_in,
    "product-catalog-service": _create_a_product,
    "order-processing-service": _place_an_order,
    "chat-llm-service": _a_grounded_chat_turn,
}


@pytest.mark.parametrize("name", SERVICES)
def test_exported_service_runs_alone_with_stand_ins_for_its_neighbours(
    name: str, exported: Path, tmp_path: Path, suite_runs: dict[str, Future[str]]
) -> None:
    # Not beside the test suites: their venvs first, and no third busy process on two cores.
    wait(suite_runs.values())
    repository = exported / name
    _with_wheel(repository)

    with (
        _make_run(repository, tmp_path / "make-run.log") as run,
        httpx.Client(timeout=30) as client,
    ):
        ready = client.get(f"{run.service_url}/ready")
        assert ready.status_code == 200, ready.text
        DEMOS[name](client, run)

    # The data folder is git-ignored: the repository stays clean, and its data stays for next time.
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored=no"],
        cwd=repository,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".run" not in status, status
    assert (repository / "src" / ".run").is_dir()
