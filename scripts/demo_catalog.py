"""The demo catalog: loaded once, through the gateway, into the empty catalog of a new local fleet.

``scripts/demo-catalog.json`` holds the products (each one exactly a ``POST /products`` body).
``ensure_loaded`` runs when ``make up`` finds the fleet ready: it logs in as the admin and adds
every product with ``POST /api/products``, as any API client would. What it decided is kept in
``<data folder>/demo-catalog.state.json``:

- no state yet and the catalog is empty: load it (state ``loading``, then ``loaded``);
- no state yet and the catalog has products: leave them alone (state ``skipped``);
- ``loading`` (an earlier ``up`` stopped half-way): finish the load (SKUs already there answer
  409 and are kept as they are);
- ``loaded`` or ``skipped``: nothing, ever again; delete the state file to load it once more.

Standard library only (it runs in the runner's interpreter).
"""

from __future__ import annotations

import json
import shlex
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).resolve().with_name("demo-catalog.json")
REQUEST_ID = "fleet-demo-catalog"
_TIMEOUT = 10


class DemoCatalogError(Exception):
    """The demo catalog could not be loaded (the next ``up`` tries again)."""


def products() -> list[dict[str, Any]]:
    """The demo products, each a ``POST /products`` body."""
    loaded: list[dict[str, Any]] = json.loads(DATA_FILE.read_text(encoding="utf-8"))["products"]
    return loaded


def _request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One HTTP exchange; returns the status and the decoded JSON body (None when empty)."""
    request = urllib.request.Request(  # noqa: S310 - the fleet's own gateway URL
        url, data=body, method=method, headers={"X-Request-ID": REQUEST_ID, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
            status, raw = int(response.status), response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        raise DemoCatalogError(f"{method} {url}: {error}") from None
    return status, json.loads(raw) if raw else None


def _admin_token(gateway_url: str, email: str, password: str) -> str:
    form = urllib.parse.urlencode({"username": email, "password": password}).encode()
    status, body = _request(
        "POST",
        f"{gateway_url}/api/auth/token",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    if status != 200:
        raise DemoCatalogError(
            f"the admin login {email} was refused ({status}); is FLEET_ADMIN_PASSWORD the password "
            "this admin was created with?"
        )
    token: str = body["access_token"]
    return token


def catalog_is_empty(gateway_url: str) -> bool:
    """Whether ``GET /api/products`` lists no product at all."""
    status, body = _request("GET", f"{gateway_url}/api/products?limit=1")
    if status != 200:
        raise DemoCatalogError(f"GET /api/products answered {status}")
    return not body["items"]


def first_product_id(gateway_url: str) -> str | None:
    """The id of a product to show in the examples (the newest one), if there is any."""
    try:
        status, body = _request("GET", f"{gateway_url}/api/products?limit=1")
    except DemoCatalogError:
        return None
    if status != 200 or not body["items"]:
        return None
    product_id: str = body["items"][0]["id"]
    return product_id


def _write_state(state_file: Path, status: str, **details: Any) -> None:
    state = {"status": status, "at": datetime.now(UTC).isoformat(timespec="seconds"), **details}
    state_file.write_text(json.dumps(state, indent=2) + "\n")


def _read_state(state_file: Path) -> dict[str, Any] | None:
    if not state_file.exists():
        return None
    state: dict[str, Any] = json.loads(state_file.read_text())
    return state


def load(gateway_url: str, token: str) -> tuple[int, int]:
    """Add every demo product; returns (added, already there)."""
    added = existing = 0
    for product in products():
        status, body = _request(
            "POST",
            f"{gateway_url}/api/products",
            body=json.dumps(product).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        if status == 201:
            added += 1
        elif status == 409:
            existing += 1
        else:
            detail = body.get("detail") if isinstance(body, dict) else body
            raise DemoCatalogError(f"adding {product['sku']} answered {status}: {detail}")
    return added, existing


def ensure_loaded(
    *, gateway_url: str, admin_email: str, admin_password: str, state_file: Path
) -> list[str]:
    """Load the demo catalog when this data folder calls for it; returns what to tell the user."""
    state = _read_state(state_file)
    if state is not None and state["status"] in ("loaded", "skipped"):
        return [
            f"demo catalog: {state['status']} at {state['at']}, not loaded again "
            f"(delete {state_file} to load it once more)"
        ]
    try:
        if state is None and not catalog_is_empty(gateway_url):
            _write_state(state_file, "skipped", reason="the catalog already had products")
            return ["demo catalog: not loaded, the catalog already has products"]
        _write_state(state_file, "loading")
        token = _admin_token(gateway_url, admin_email, admin_password)
        added, existing = load(gateway_url, token)
    except DemoCatalogError as error:
        return [f"demo catalog: NOT loaded ({error}); the next 'make up' tries again"]
    categories = len({product["category"] for product in products()})
    _write_state(state_file, "loaded", products=added + existing, categories=categories)
    resumed = f" ({existing} were already there)" if existing else ""
    return [
        f"demo catalog: loaded {added + existing} products in {categories} categories{resumed} "
        f"from {DATA_FILE.name}"
    ]


def example_commands(gateway_url: str, product_id: str | None) -> list[str]:
    """A few ``curl`` commands that walk through the API (register, log in, order, chat)."""
    base = gateway_url
    email, password = "ada@example.com", "correct-horse-battery"
    user = {"email": email, "password": password, "full_name": "Ada Lovelace"}
    order = {
        "items": [{"product_id": product_id or "<a product id>", "quantity": 1}],
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "12 St James Square",
            "city": "London",
            "postal_code": "SW1Y 4JH",
            "country": "GB",
        },
    }
    json_header = "-H 'Content-Type: application/json'"
    bearer = '-H "Authorization: Bearer $TOKEN"'
    parse_login = "python3 -c 'import json, sys; print(json.load(sys.stdin)[\"access_token\"])'"
    chat = {"message": "Do you have trail running shoes?"}
    return [
        f"curl -s '{base}/api/products?q=espresso'",
        f"curl -s {base}/api/categories",
        f"curl -s -X POST {base}/api/users {json_header} -d {shlex.quote(json.dumps(user))}",
        f"TOKEN=$(curl -s {base}/api/auth/token -d username={email} -d password={password}"
        f" | {parse_login})",
        f"curl -s -X POST {base}/api/orders {bearer} -H 'Idempotency-Key: ada-order-1' "
        f"{json_header} -d {shlex.quote(json.dumps(order))}",
        f"curl -s -X POST {base}/api/chat/generate_response {bearer} {json_header} "
        f"-d {shlex.quote(json.dumps(chat))}",
    ]
