"""A typed Python client generated from the published document (openapi-python-client), used for
real: register, log in, search, place an order with an Idempotency-Key, read it, cancel it, all
through the gateway. A schema the generator cannot handle is a defect of the document: the
generator's warnings fail the test.

The test finds each operation's generated module from the document itself (its tag and
operationId, named the way the generator names them), so it depends on the paths and methods of
the contract, not on names the services may choose.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import typing
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from openapi_python_client.strings import PythonIdentifier

from tests.fleet import Fleet
from tests.support.shop import Account, Shop, shipping_address, unique

pytestmark = pytest.mark.usefixtures("first_order")

PACKAGE = "fleet_client"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"


@pytest.fixture(scope="module")
def document(fleet: Fleet, client: httpx.Client) -> dict[str, Any]:
    response = client.get(fleet.gateway + "/api/openapi.json")
    assert response.status_code == 200
    published: dict[str, Any] = response.json()
    return published


@pytest.fixture(scope="module")
def generated(
    fleet: Fleet, client: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The client package, generated from what the gateway serves, importable for the module."""
    workdir = tmp_path_factory.mktemp("client")
    (workdir / "openapi.json").write_bytes(client.get(fleet.gateway + "/api/openapi.json").content)
    (workdir / "config.yml").write_text(
        # No post-hooks: the generator would format its output with ruff from PATH.
        f"project_name_override: fleet-client\npackage_name_override: {PACKAGE}\npost_hooks: []\n"
    )
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(workdir / "openapi.json"),
            "--config",
            str(workdir / "config.yml"),
            "--meta",
            "none",
            "--output-path",
            str(workdir / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=workdir,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Warning" not in output, output
    sys.path.insert(0, str(workdir))
    try:
        yield workdir / PACKAGE
    finally:
        sys.path.remove(str(workdir))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def operation(document: dict[str, Any], method: str, path: str) -> ModuleType:
    """The generated module of ``method path``: ``<package>.api.<tag>.<operationId>``."""
    spec = document["paths"][path][method]
    tag = PythonIdentifier(spec.get("tags", ["default"])[0], prefix="")
    name = PythonIdentifier(spec["operationId"], prefix="")
    return importlib.import_module(f"{PACKAGE}.api.{tag}.{name}")


def body(module: ModuleType, data: dict[str, Any]) -> Any:
    """``data`` as the generated model of the operation's request body: the body's class, or,
    where the body is one of several (the token form's grants), the one that ``data`` fits."""
    hint = typing.get_type_hints(module.sync_detailed)["body"]
    for option in typing.get_args(hint) or (hint,):
        try:
            return option.from_dict(data)
        except (KeyError, TypeError, ValueError):
            continue
    raise AssertionError(f"no body model of {module.__name__} takes {sorted(data)}")


def call(module: ModuleType, **arguments: Any) -> Any:
    return module.sync_detailed(**arguments)


def with_id(document: dict[str, Any], pattern: str, method: str, value: str) -> dict[str, Any]:
    """The one path matching ``pattern`` and its path parameter's argument set to ``value``."""
    [path] = [path for path in document["paths"] if re.fullmatch(pattern, path)]
    parameter = re.search(r"\{([^}]+)\}", path)
    assert parameter is not None
    return {"module": operation(document, method, path), PythonIdentifier(parameter[1], ""): value}


@pytest.fixture
def clients() -> Iterator[ExitStack]:
    """Where the test's generated clients are closed (each holds an httpx connection pool)."""
    with ExitStack() as stack:
        yield stack


def test_a_generated_client_registers_logs_in_searches_orders_reads_and_cancels(
    generated: Path,
    document: dict[str, Any],
    fleet: Fleet,
    shop: Shop,
    admin: Account,
    clients: ExitStack,
) -> None:
    client_module = importlib.import_module(PACKAGE)
    anonymous = clients.enter_context(
        client_module.Client(base_url=fleet.gateway, raise_on_unexpected_status=True)
    )
    product = shop.add_product(admin, stock=5, name=f"Generated Client Lamp {unique('g')}")
    email = f"{unique('generated')}@example.com"

    register = operation(document, "post", "/api/users")
    registered = call(
        register,
        client=anonymous,
        body=body(
            register,
            {"email": email, "password": "generated-client-pw-1", "full_name": "Ada Client"},
        ),
    )
    assert registered.status_code == 201
    assert registered.parsed.email == email

    login = operation(document, "post", "/api/auth/token")
    tokens = call(
        login,
        client=anonymous,
        body=body(login, {"username": email, "password": "generated-client-pw-1"}),
    )
    assert tokens.status_code == 200
    customer = clients.enter_context(
        client_module.AuthenticatedClient(
            base_url=fleet.gateway,
            token=tokens.parsed.access_token,
            raise_on_unexpected_status=True,
        )
    )

    search = call(operation(document, "get", "/api/products"), client=anonymous, q=product["name"])
    assert search.status_code == 200
    assert [str(item.id) for item in search.parsed.items] == [product["id"]]
    assert search.parsed.items[0].price == "24.50"

    place = operation(document, "post", "/api/orders")
    order_body = {
        "items": [{"product_id": product["id"], "quantity": 2}],
        "shipping_address": shipping_address(),
    }
    key = unique("generated-order")
    placed = call(
        place,
        client=customer,
        body=body(place, order_body),
        idempotency_key=key,
    )
    replayed = call(
        place,
        client=customer,
        body=body(place, order_body),
        idempotency_key=key,
    )
    assert placed.status_code == 201
    assert str(placed.parsed.status) == "confirmed"
    assert placed.parsed.total == "49.00"
    assert replayed.parsed.id == placed.parsed.id

    read = call(
        **with_id(document, r"/api/orders/\{[^}]+\}", "get", placed.parsed.id), client=customer
    )
    assert read.status_code == 200
    assert read.parsed.id == placed.parsed.id

    cancelled = call(
        **with_id(document, r"/api/orders/\{[^}]+\}/cancel", "post", placed.parsed.id),
        client=customer,
    )
    assert cancelled.status_code == 200
    assert str(cancelled.parsed.status) == "cancelled"
    assert shop.product(product["id"])["stock_available"] == 5
