"""CORS in a real browser: headless Chromium (Debian's, or $CHROMIUM) loads a page from another
origin (a small HTTP server on another port), whose script calls the API through a real gateway.

From an allowed origin the preflighted POST succeeds and the page reads the stub service's JSON and
the exposed X-Request-ID; from an origin that is not listed the request reaches the service, but the
browser refuses the answer to the page (fetch rejects). Chromium runs with ``--dump-dom``: it loads
the page, runs it in virtual time (which does not advance while a request is in flight) and prints
the DOM; the page writes its result into it.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import GatewayFactory
from support.servers import Gateway, Stub

# Debian's Chromium; the Makefile's CHROMIUM (the workflow passes the runner's Google Chrome).
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags Chromium calls home at start, which a closed network
# refuses; --no-sandbox because the tests may run as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Virtual time: spent only while the page is idle, so a slow machine does not cut a request short.
VIRTUAL_TIME_BUDGET_MS = 10_000
CHROMIUM_TIMEOUT_SECONDS = 90

# The page calls the gateway with what a browser client sends (a bearer token, a JSON body, an
# Idempotency-Key and its own request id: a preflight for each), then writes what it could read.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>CORS probe</title></head>
<body><pre id="result">pending</pre>
<script>
const params = new URLSearchParams(location.search);
const show = (value) => { document.getElementById("result").textContent = JSON.stringify(value); };
fetch(params.get("api"), {
  method: "POST",
  headers: {
    "Authorization": "Bearer a-token",
    "Content-Type": "application/json",
    "Idempotency-Key": params.get("key"),
    "X-Request-ID": params.get("key"),
  },
  body: JSON.stringify({items: []}),
})
  .then(async (response) => show({
    outcome: "read",
    status: response.status,
    requestId: response.headers.get("X-Request-ID"),
    body: await response.json(),
  }))
  .catch((error) => show({outcome: "rejected", error: error.name}));
</script></body></html>
"""


class _PageServer:
    """A static HTTP server in a thread: the page's origin is http://127.0.0.1:<port>."""

    def __init__(self, directory: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the test's stderr."""


@pytest.fixture(scope="module")
def page_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, _PageServer]]:
    """Two origins serving the same page: one the gateway allows, one it does not."""
    directory = tmp_path_factory.mktemp("cors-page")
    (directory / "index.html").write_text(PAGE, encoding="utf-8")
    servers = {"allowed": _PageServer(directory), "other": _PageServer(directory)}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def browser_gateway(
    make_gateway: GatewayFactory, upstreams: dict[str, str], page_servers: dict[str, _PageServer]
) -> Gateway:
    return make_gateway(
        upstreams=upstreams,
        name="gateway-cors-browser",
        overrides={"GATEWAY_CORS_ORIGINS": f"https://app.example,{page_servers['allowed'].origin}"},
    )


def _run_page(page_url: str, profile: Path) -> dict[str, Any]:
    """Load ``page_url`` in headless Chromium with a new profile; return what the page wrote."""
    assert CHROMIUM.exists(), "Chromium is missing: make test installs Debian's chromium"
    profile.mkdir()
    completed = subprocess.run(
        [
            str(CHROMIUM),
            *CHROMIUM_ARGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
            "--dump-dom",
            page_url,
        ],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    start = completed.stdout.index('<pre id="result">') + len('<pre id="result">')
    text = completed.stdout[start : completed.stdout.index("</pre>", start)]
    assert text != "pending", "the page's request never finished"
    result: dict[str, Any] = json.loads(text.replace("&quot;", '"').replace("&amp;", "&"))
    return result


def _page_url(server: _PageServer, gateway: Gateway, path: str, key: str) -> str:
    return f"{server.origin}/index.html?api={gateway.url}{path}&key={key}"


def test_a_page_from_an_allowed_origin_calls_the_api(
    page_servers: dict[str, _PageServer],
    browser_gateway: Gateway,
    stubs: dict[str, Stub],
    tmp_path: Path,
) -> None:
    key = f"browser-allowed-{uuid.uuid4().hex}"

    page = _page_url(page_servers["allowed"], browser_gateway, "/api/orders", key)

    result = _run_page(page, tmp_path / "profile")

    assert result["outcome"] == "read", result
    assert result["status"] == 200
    assert result["requestId"] == key
    assert result["body"]["service"] == "order"
    assert (result["body"]["method"], result["body"]["path"]) == ("POST", "/orders")
    headers = dict(result["body"]["headers"])
    assert (headers["authorization"], headers["idempotency-key"]) == ("Bearer a-token", key)
    # nginx answered the preflight itself: the service saw the POST alone.
    assert [r["method"] for r in stubs["order"].requests() if r["request_id"] == key] == ["POST"]


def test_a_page_from_another_origin_is_refused_by_the_browser(
    page_servers: dict[str, _PageServer],
    browser_gateway: Gateway,
    stubs: dict[str, Stub],
    tmp_path: Path,
) -> None:
    key = f"browser-other-{uuid.uuid4().hex}"

    # A path of its own: a preflight carries no X-Request-ID to tell it by.
    page = _page_url(page_servers["other"], browser_gateway, f"/api/orders/{key}", key)

    result = _run_page(page, tmp_path / "profile")

    assert result == {"outcome": "rejected", "error": "TypeError"}
    # The preflight went to the service as before CORS (which answered it without CORS headers,
    # the gateway hiding the stub's own), and the browser stopped there: no POST was sent.
    seen = [r["method"] for r in stubs["order"].requests() if r["path"] == f"/orders/{key}"]
    assert seen == ["OPTIONS"]
