"""The public contract as the gateway publishes it: one valid OpenAPI 3.1 document of what clients
can call, the same document the services' own committed documents build, linted."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from openapi_spec_validator import validate

from tests.fleet import ROOT, Fleet

E2E = Path(__file__).resolve().parents[1]
GATEWAY = ROOT / "api-gateway-service"
PUBLIC_DOCUMENT = GATEWAY / "openapi" / "openapi.json"
SERVICE_DOCUMENTS = [
    ROOT / service / "src" / "openapi.json"
    for service in (
        "user-service",
        "product-catalog-service",
        "order-processing-service",
        "chat-llm-service",
    )
]
SPECTRAL = E2E / "node_modules" / ".bin" / "spectral"
RULESET = E2E / ".spectral.yaml"

# Every public operation of the contract (the design's API.md), path parameters as {}.
PUBLIC_OPERATIONS = {
    ("post", "/api/users"),
    ("get", "/api/users"),
    ("get", "/api/users/me"),
    ("patch", "/api/users/me"),
    ("delete", "/api/users/me"),
    ("get", "/api/users/{}"),
    ("post", "/api/auth/token"),
    ("post", "/api/auth/refresh"),
    ("post", "/api/auth/logout"),
    ("get", "/api/auth/jwks"),
    ("get", "/api/products"),
    ("post", "/api/products"),
    ("get", "/api/products/{}"),
    ("patch", "/api/products/{}"),
    ("delete", "/api/products/{}"),
    ("get", "/api/categories"),
    ("post", "/api/orders"),
    ("get", "/api/orders"),
    ("get", "/api/orders/{}"),
    ("post", "/api/orders/{}/cancel"),
    ("patch", "/api/orders/{}/status"),
    ("post", "/api/chat/generate_response"),
    ("post", "/api/chat/get_embeddings"),
    ("post", "/api/chat/count_tokens"),
    ("get", "/api/chat/conversations"),
    ("get", "/api/chat/conversations/{}"),
    ("delete", "/api/chat/conversations/{}"),
    ("get", "/api/chat/usage"),
}
ROUTED_PREFIXES = tuple(
    f"/api/{name}" for name in ("users", "auth", "products", "categories", "orders", "chat")
)
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, re.sub(r"\{[^}]+\}", "{}", path))
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def test_the_gateway_serves_a_valid_document_of_every_public_operation_and_nothing_else(
    fleet: Fleet, client: httpx.Client
) -> None:
    response = client.get(fleet.gateway + "/api/openapi.json")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    operations = _operations(document)
    assert PUBLIC_OPERATIONS - operations == set()
    paths = list(document["paths"])
    assert [path for path in paths if not path.startswith(ROUTED_PREFIXES)] == []
    for internal in ("/inventory", "/health", "/ready", "/metrics", "/docs", "/openapi.json"):
        assert [path for path in paths if internal in path] == []
    schemes = document["components"]["securitySchemes"]
    flows = [scheme["flows"] for scheme in schemes.values() if scheme["type"] == "oauth2"]
    assert flows == [{"password": {"tokenUrl": "/api/auth/token", "scopes": {}}}]
    # What is served is what the repository holds.
    assert document == json.loads(PUBLIC_DOCUMENT.read_text())


def test_the_committed_public_document_is_what_the_services_documents_build() -> None:
    result = subprocess.run(
        [sys.executable, str(GATEWAY / "scripts" / "build_openapi.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_document_passes_the_linter() -> None:
    documents = [PUBLIC_DOCUMENT, *SERVICE_DOCUMENTS]
    result = subprocess.run(
        [str(SPECTRAL), "lint", "--ruleset", str(RULESET), "--fail-severity", "warn"]
        + [str(document) for document in documents],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=E2E,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No results with a severity of 'warn' or higher found!" in result.stdout
