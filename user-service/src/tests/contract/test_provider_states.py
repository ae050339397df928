"""The provider-state endpoint the pact verifier calls: it refuses states that do not hold."""

from __future__ import annotations

import httpx
from common_libs.testing.pact import RunningProvider

from tests.contract.conftest import CLIENT_STATE


def test_state_of_an_unregistered_service_client_is_refused(provider: RunningProvider) -> None:
    params = {"client_id": "unregistered-service", "client_secret": "any-secret"}

    response = httpx.post(
        provider.provider_states_url, json={"state": CLIENT_STATE, "params": params}
    )

    assert response.status_code == 409
    assert "USERS_SERVICE_CLIENTS" in response.json()["detail"]


def test_unknown_state_is_refused_naming_the_known_ones(provider: RunningProvider) -> None:
    response = httpx.post(provider.provider_states_url, json={"state": "the moon is full"})

    assert response.status_code == 422
    assert response.json()["known_states"] == [CLIENT_STATE]
