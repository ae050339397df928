"""The gateway's interactive API reference, in a real browser: headless Chromium (Debian's), driven
by Playwright with its executable path (no browser download).

The page renders the public document, lists its operations, and "Try it out" reaches the same
gateway: an anonymous product listing, then, authorised with the OAuth2 password flow through the
page's own dialog, the caller's account. Screenshots land in ``e2e/.artifacts/`` (git-ignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.fleet import Fleet
from tests.support.shop import Shop

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / ".artifacts"
# Without the background-networking flags Chromium calls home at start, which a closed network
# refuses; --no-sandbox because the tests may run as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Swagger UI renders asynchronously; its slowest step here is parsing the whole document.
RENDER_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Chromium is missing: make test installs Debian's chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1600})
    try:
        yield context.new_page()
    finally:
        context.close()


def _operations(document: dict[str, Any]) -> int:
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return sum(1 for item in document["paths"].values() for method in item if method in methods)


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 0


def _open_operation(page: Page, method: str, path: str) -> Locator:
    block = page.locator(f".opblock-{method}").filter(
        has=page.locator(f'.opblock-summary-path[data-path="{path}"]')
    )
    expect(block).to_have_count(1)
    block.locator(".opblock-summary-control").click()
    expect(block).to_have_class(re.compile(r"\bis-open\b"))
    return block


def _execute(block: Locator) -> str:
    # The page opens operations ready to try (tryItOutEnabled); otherwise, "Try it out" first.
    if block.locator("button.execute").count() == 0:
        block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    expect(status).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    text: str = status.inner_text()
    return text.strip()


def test_the_reference_page_lists_every_operation_and_tries_one_against_the_gateway(
    fleet: Fleet, page: Page, client: httpx.Client
) -> None:
    document = client.get(fleet.gateway + "/api/openapi.json").json()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )

    page.goto(fleet.gateway + "/api/docs")

    expect(page.locator(".opblock").first).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    assert page.locator(".opblock").count() == _operations(document)
    products = _open_operation(page, "get", "/api/products")
    assert _execute(products) == "200"
    _screenshot(page, "api-docs-try-it-out.png")
    # The page's own Content-Security-Policy let everything it needs load.
    assert errors == []


def test_try_it_out_authorised_with_the_password_flow_reads_the_callers_account(
    fleet: Fleet, page: Page, shop: Shop
) -> None:
    customer = shop.new_customer()
    page.goto(fleet.gateway + "/api/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=RENDER_TIMEOUT_MS)

    page.locator(".auth-wrapper button.authorize").click()
    password_flow = page.locator(".dialog-ux .auth-container").filter(has_text="OAuth2Password")
    password_flow.locator("input#oauth_username").fill(customer.email)
    password_flow.locator("input#oauth_password").fill(customer.password)
    password_flow.locator("button.authorize").click()
    expect(password_flow).to_contain_text("Logout", timeout=RENDER_TIMEOUT_MS)
    page.locator(".dialog-ux button.close-modal").click()

    me = _open_operation(page, "get", "/api/users/me")
    assert _execute(me) == "200"
    body = me.locator(".live-responses-table tbody .response-col_description").first
    assert customer.email in body.inner_text()
    _screenshot(page, "api-docs-authorised.png")
