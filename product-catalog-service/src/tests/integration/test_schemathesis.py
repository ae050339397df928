"""Property-based checks of the OpenAPI schema against the real service (schemathesis).

The service runs as a uvicorn process on the session's database and fetches the token issuer's
public keys from a stub JWKS endpoint, as it would from user-service. Every generated request
must answer without a 5xx and conform to the schema (status, content type, body), and each
problem must have a type its operation documents for that status.
"""

from __future__ import annotations

import hashlib
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from common_libs.testing import NatsServer, ServerProcess, TestTokenIssuer, free_port
from common_libs.testing.problem_checks import check_problem_type_answered
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.main import create_app
from tests.conftest import make_settings
from tests.integration.conftest import SERVICE_ROOT
from tests.support.products import serve_jwks

MAX_EXAMPLES = 15
SCHEMATHESIS_CASES = pytest.StashKey[list[int]]()

# The contract itself makes these answer 422 to requests the schema cannot call invalid:
# a reservation of a product that does not exist, and a cursor that this API did not issue.
_REJECTS_SCHEMA_VALID_INPUT = {("POST", "/inventory/reservations"), ("GET", "/products")}


@pytest.fixture(scope="module")
def jwks_url(issuer: TestTokenIssuer) -> Iterator[str]:
    """A stub of user-service's ``GET /auth/jwks``, serving the test issuer's public key."""
    with serve_jwks(issuer.jwks()) as url:
        yield url


@pytest.fixture(scope="module")
def service_url(
    database_url: str,
    nats_server: NatsServer,
    jwks_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The service as a uvicorn process, configured only through its environment."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    env = {
        "CATALOG_DATABASE_URL": database_url,
        "NATS_URL": nats_server.url,
        "CATALOG_JWKS_URL": jwks_url,
        "CATALOG_ENVIRONMENT": "test",
        "CATALOG_LOG_LEVEL": "WARNING",
    }
    base = f"http://127.0.0.1:{port}"
    log_path: Path = tmp_path_factory.mktemp("schemathesis") / "service.log"
    with ServerProcess(
        argv, env=env, cwd=SERVICE_ROOT, log_path=log_path, ready_url=base + "/health"
    ):
        yield base


@pytest.fixture(scope="module")
def role_headers(issuer: TestTokenIssuer) -> dict[str, dict[str, str]]:
    """Valid credentials per role (long-lived: the run may take a while)."""
    return {
        role: issuer.headers(role=role, ttl_seconds=3600)
        for role in ("admin", "service", "customer")
    }


@dataclass(frozen=True)
class Seeded:
    """Products and reservations that exist, so that generated requests also reach success."""

    product_ids: list[str]
    reservation_ids: list[str]


@pytest.fixture(scope="module")
def seeded(service_url: str, role_headers: dict[str, dict[str, str]]) -> Seeded:
    """Twenty products with ample stock and five held reservations of them."""
    product_ids = []
    for i in range(20):
        body = {
            "sku": f"ST-{uuid.uuid4().hex[:12]}",
            "name": f"Seeded product {i}",
            "description": "For generated requests to find.",
            "category": "schemathesis",
            "price": "10.00",
            "stock": 1_000_000,
        }
        response = httpx.post(service_url + "/products", json=body, headers=role_headers["admin"])
        product_ids.append(response.raise_for_status().json()["id"])
    reservation_ids = []
    for product_id in product_ids[:5]:
        body = {
            "reservation_id": str(uuid.uuid4()),
            "items": [{"product_id": product_id, "quantity": 1}],
        }
        response = httpx.post(
            service_url + "/inventory/reservations", json=body, headers=role_headers["service"]
        )
        reservation_ids.append(response.raise_for_status().json()["reservation_id"])
    return Seeded(product_ids, reservation_ids)


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _coin(generated: object) -> int | None:
    """Half of the valid generated ids get a number (which seeded row to use instead)."""
    digest = hashlib.sha256(str(generated).encode()).digest()
    return digest[1] if _is_uuid(generated) and digest[0] % 2 else None


def _point_at_seeded_rows(case: Case, seeded: Seeded) -> None:
    """Swap half of the generated (valid) ids for ids that exist; the rest stay unknown."""
    parameters = case.path_parameters or {}
    for name, ids in (
        ("product_id", seeded.product_ids),
        ("reservation_id", seeded.reservation_ids),
    ):
        if name in parameters and (number := _coin(parameters[name])) is not None:
            parameters[name] = ids[number % len(ids)]
    body = case.body
    if case.path == "/inventory/reservations" and isinstance(body, dict):
        items = body.get("items")
        number = _coin(body.get("reservation_id"))
        if isinstance(items, list) and number is not None:
            for offset, item in enumerate(items):
                if isinstance(item, dict) and _is_uuid(item.get("product_id")):
                    item["product_id"] = seeded.product_ids[
                        (number + offset) % len(seeded.product_ids)
                    ]


@pytest.fixture(scope="module")
def case_counter(pytestconfig: pytest.Config) -> list[int]:
    """Counts the generated cases; the total is printed in the terminal summary."""
    return pytestconfig.stash.setdefault(SCHEMATHESIS_CASES, [0])


def _headers_for(case: Case, role_headers: dict[str, dict[str, str]]) -> dict[str, str]:
    if case.path.startswith("/inventory"):
        return role_headers["service"]
    if case.method != "GET":
        return role_headers["admin"]
    return {}


# The schema is what the app publishes at /openapi.json (built here without a database).
OPENAPI = create_app(make_settings()).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)


def test_service_publishes_the_schema_under_test(service_url: str) -> None:
    assert httpx.get(service_url + "/openapi.json").json() == OPENAPI


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(
    case: Case,
    service_url: str,
    role_headers: dict[str, dict[str, str]],
    seeded: Seeded,
    case_counter: list[int],
) -> None:
    case_counter[0] += 1
    _point_at_seeded_rows(case, seeded)
    excluded = []
    if (case.method, case.path) in _REJECTS_SCHEMA_VALID_INPUT:
        excluded.append(positive_data_acceptance)
    response = case.call_and_validate(
        base_url=service_url,
        headers=_headers_for(case, role_headers),
        excluded_checks=excluded,
    )
    check_problem_type_answered(_as_httpx(response), OPENAPI)


def _as_httpx(response: schemathesis.Response) -> httpx.Response:
    """The answer as common-libs' problem type check reads it."""
    request = httpx.Request(str(response.request.method), str(response.request.url))
    headers = [(name, value) for name, values in response.headers.items() for value in values]
    return httpx.Response(
        response.status_code, headers=headers, content=response.content, request=request
    )
