"""The API reference page at /api/docs: Swagger UI from the gateway itself, with its own CSP.

Also: the files are served from exact locations only, so no request path reaches another file.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import PurePosixPath

import httpx
import pytest

import run_local
from support.assertions import (
    SECURITY_HEADERS,
    assert_get_and_head_only,
    assert_problem,
    assert_security_headers,
)
from support.raw_http import raw_request
from support.servers import SERVICE_DIR, Gateway

PAGE_DIR = SERVICE_DIR / "openapi" / "docs"
TEMPLATE = SERVICE_DIR / "config" / "templates" / "gateway.conf.template"
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}


class _Page(HTMLParser):
    """The page's scripts (src and inline text), links and event-handler attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str | None] = []
        self.inline_script = ""
        self.links: list[str] = []
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self.scripts.append(values.get("src"))
            self._in_script = True
        self.links += [value for name, value in attrs if name in {"href", "src"} and value]

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_script += data


@pytest.fixture(scope="module")
def page(gateway: Gateway) -> _Page:
    parser = _Page()
    parser.feed(httpx.get(f"{gateway.url}/api/docs").text)
    return parser


def test_the_page_is_html_with_its_own_csp_and_every_other_security_header(
    client: httpx.Client,
) -> None:
    response = client.get("/api/docs")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers.get_list("content-security-policy") == [DOCS_CSP]
    for name, value in SECURITY_HEADERS.items():
        if name != "content-security-policy":
            assert response.headers.get_list(name) == [value], name
    assert len(response.headers.get_list("x-request-id")) == 1
    assert response.headers["cache-control"] == "no-cache"
    assert "etag" in response.headers


def test_the_page_has_no_inline_script_and_loads_nothing_from_elsewhere(page: _Page) -> None:
    assert page.scripts == ["docs/swagger-ui-bundle.js", "docs/init.js"]
    assert page.inline_script.strip() == ""
    assert page.handlers == []
    for link in page.links:
        assert not re.match(r"^([a-z][a-z0-9+.-]*:|//)", link, re.I), link


def test_every_file_the_page_loads_answers_with_its_type_and_the_strict_csp(
    gateway: Gateway, page: _Page
) -> None:
    assets = sorted({link for link in page.links if link.startswith("docs/")})
    assert assets == [
        "docs/favicon-32x32.png",
        "docs/init.js",
        "docs/swagger-ui-bundle.js",
        "docs/swagger-ui.css",
    ]
    for asset in assets:
        response = httpx.get(f"{gateway.url}/api/{asset}")

        assert response.status_code == 200, asset
        assert response.headers["content-type"] == CONTENT_TYPES[asset[asset.rfind(".") :]]
        assert response.headers["cache-control"] == "no-cache"
        assert_security_headers(response.headers.multi_items())


def test_swagger_ui_is_the_pinned_package_and_its_files_are_served_unchanged(
    client: httpx.Client,
) -> None:
    manifest = json.loads((SERVICE_DIR / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((SERVICE_DIR / "package-lock.json").read_text(encoding="utf-8"))
    pinned = manifest["dependencies"]["swagger-ui-dist"]

    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned)
    assert lock["packages"]["node_modules/swagger-ui-dist"]["version"] == pinned
    installed = json.loads((run_local.SWAGGER_UI_DIR / "package.json").read_text(encoding="utf-8"))
    assert installed["version"] == pinned
    for name in run_local.SWAGGER_UI_FILES:
        response = client.get(f"/api/docs/{name}")
        assert response.content == (run_local.SWAGGER_UI_DIR / name).read_bytes(), name


def test_the_initializer_loads_the_gateways_document_with_try_it_out_on(
    client: httpx.Client,
) -> None:
    script = client.get("/api/docs/init.js").text

    assert 'new URL("openapi.json", document.baseURI)' in script
    assert "tryItOutEnabled: true" in script
    assert "validatorUrl: null" in script
    assert "persistAuthorization: false" in script
    assert not re.search(r"https?://", script)


def test_the_page_files_are_the_committed_ones(client: httpx.Client) -> None:
    assert client.get("/api/docs").content == (PAGE_DIR / "index.html").read_bytes()
    assert client.get("/api/docs/init.js").content == (PAGE_DIR / "init.js").read_bytes()


def test_each_file_location_is_exact_and_aliased_to_one_existing_file(gateway: Gateway) -> None:
    template = TEMPLATE.read_text(encoding="utf-8")
    aliases = re.findall(r"^\s*location\s+(=?)\s*(\S+)\s*\{\s*alias\s+(\S+);", template, re.M)
    static_dir = gateway.workdir / "static"

    assert len(aliases) == len(re.findall(r"^\s*(?:alias|root)\s", template, re.M)) == 6
    for exact, location, alias in aliases:
        assert exact == "=", location
        relative = alias.removeprefix("${GATEWAY_STATIC_DIR}/")
        assert (static_dir / relative).is_file(), alias
        if location != "/api/docs":
            assert PurePosixPath(location).name == PurePosixPath(relative).name, location


@pytest.mark.parametrize(
    "target",
    [
        "/api/docs/",
        "/api/docs/.",
        "/api/docs/index.html",
        "/api/docs/docs/init.js",
        "/api/docs/swagger-initializer.js",
        "/api/docs/oauth2-redirect.html",
        "/api/docs/swagger-ui.css.map",
        "/api/docs/swagger-ui-bundle.js/",
        "/api/docs/init.js/..",
        "/api/docs/init.js%00",
        "/api/docsx",
        "/api/docs..",
        "/api/docs../openapi.json",
        "/api/docs/../../nginx.conf",
        "/api/docs/../../conf.d/gateway.conf",
        "/api/docs/..%2F..%2Fnginx.conf",
        "/api/docs/..%2f..%2fstatic%2fopenapi.json",
        "/api/docs/%2e%2e/%2e%2e/nginx.pid",
        "/api/docs/..\\..\\nginx.conf",
        "/api/docs/..;/..;/nginx.conf",
        "/api/openapi.json/",
        "/api/openapi.json/..%2F..%2Fnginx.conf",
        "/api/openapi.json.gz",
        "/api/openapi.json%2F..%2F..%2Fnginx.conf",
        "/api/static/openapi.json",
        "/static/docs/init.js",
        "/nginx.conf",
        "/conf.d/gateway.conf",
        "/api/docs/../../../../../../../etc/passwd",
    ],
)
def test_no_path_reaches_another_file(gateway: Gateway, target: str) -> None:
    response = raw_request(gateway.port, "GET", target)

    # 400: nginx refuses a path whose ".." climbs above the root, or with a NUL, before any
    # location is chosen.
    expected = 400 if response.status == 400 else 404
    assert_problem(
        response.status,
        response.headers,
        response.body,
        expected_status=expected,
        title="Bad Request" if expected == 400 else "Not Found",
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_the_page_answers_only_get_and_head(gateway: Gateway, method: str) -> None:
    response = raw_request(gateway.port, method, "/api/docs", body=b"x")

    assert_get_and_head_only(response)
