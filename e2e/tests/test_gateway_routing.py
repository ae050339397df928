"""Clients reach the services only through the gateway, with request ids end to end."""

from __future__ import annotations

from common_libs.testing import wait_until

from tests.fleet import Fleet, get


def test_gateway_healthz_answers_ok(fleet: Fleet) -> None:
    response = get(fleet.gateway + "/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_api_products_reaches_the_catalog_and_keeps_the_request_id(fleet: Fleet) -> None:
    request_id = "e2e-products-route-1"

    response = get(fleet.gateway + "/api/products", headers={"X-Request-ID": request_id})

    assert response.headers["x-request-id"] == request_id
    # The catalog itself logged the request under the client's id: the gateway routed it there.
    wait_until(
        lambda: any(request_id in line for line in fleet.lines_of("product-catalog-service")),
        timeout=5,
        message="the catalog logs the request id",
    )


def test_service_health_is_not_routed_by_the_gateway(fleet: Fleet) -> None:
    response = get(fleet.gateway + "/health")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404


def test_every_service_answers_ready_directly(fleet: Fleet) -> None:
    for variable in ("USER_SERVICE_PORT", "CATALOG_SERVICE_PORT", "ORDER_SERVICE_PORT"):
        response = get(f"http://127.0.0.1:{fleet.ports[variable]}/ready")
        assert response.status_code == 200, variable
    chat = get(f"http://127.0.0.1:{fleet.ports['CHAT_SERVICE_PORT']}/ready")
    assert chat.json()["checks"]["database"] == "ok"
