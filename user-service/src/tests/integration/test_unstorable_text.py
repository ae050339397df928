"""Text PostgreSQL cannot store (U+0000) or UTF-8 cannot encode (an unpaired surrogate) is a 422
validation problem, never a 500 with a traceback in the log (a NUL in the login form's username
once answered 500 and logged 27 KB per request)."""

from __future__ import annotations

import httpx
import pytest
from common_libs.testing.input_checks import assert_unstorable_text_refused

from tests.integration.conftest import PASSWORD, RunningService, unique_email


@pytest.mark.parametrize("username", ["a\x00@example.com", "\x00"])
def test_a_nul_in_the_login_forms_username_is_a_422_without_a_traceback(
    running_service: RunningService, username: str
) -> None:
    logged_before = len(running_service.server.output())
    form = {"username": username, "password": PASSWORD}

    response = httpx.post(running_service.base_url + "/auth/token", data=form)

    assert_unstorable_text_refused(response, what="login username")
    assert response.json()["errors"][0]["loc"] == ["body", "username"]
    assert "Traceback" not in running_service.server.output()[logged_before:]


def test_a_nul_in_the_login_forms_password_is_a_422(running_service: RunningService) -> None:
    form = {"username": unique_email(), "password": "pass\x00word"}

    response = httpx.post(running_service.base_url + "/auth/token", data=form)

    assert_unstorable_text_refused(response, what="login password")


@pytest.mark.parametrize("value", ["\\u0000", "\\ud800"], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize("field", ["email", "password", "full_name"])
def test_unstorable_text_in_the_registration_body_is_a_422_without_a_traceback(
    running_service: RunningService, field: str, value: str
) -> None:
    fields = {"email": unique_email(), "password": PASSWORD, "full_name": "Ann Lee"}
    body = ", ".join(
        f'"{name}": "{value if name == field else text}"' for name, text in fields.items()
    )
    logged_before = len(running_service.server.output())

    response = httpx.post(
        running_service.base_url + "/users",
        content="{" + body + "}",
        headers={"Content-Type": "application/json"},
    )

    assert_unstorable_text_refused(response, what=f"registration {field}")
    assert response.json()["errors"][0]["loc"] == ["body", field]
    assert "Traceback" not in running_service.server.output()[logged_before:]
