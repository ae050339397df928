"""A small upstream service run by uvicorn in the integration tests.

It plays the token issuer (a JWKS per name that tests publish, with a count of fetches) and a
service that other services call (echoing the headers it received, answering slowly on request,
counting the POSTs it received).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse

from common_libs.testing import UvicornServer

app = FastAPI()


def create_app() -> FastAPI:
    """The app, for uvicorn's ``--factory``."""
    return app


def upstream_server(log_dir: Path, *, factory: bool = False) -> UvicornServer:
    """This app under uvicorn on a free port of 127.0.0.1, not started yet."""
    return UvicornServer(
        "upstream_app:create_app" if factory else "upstream_app:app",
        app_dir=Path(__file__).parent,
        factory=factory,
        log_path=log_dir / "upstream.log",
    )


_key_sets: dict[str, Any] = {}
_fetches: Counter[str] = Counter()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.put("/jwks/{name}", status_code=204)
async def publish_jwks(name: str, key_set: Annotated[Any, Body()]) -> Response:
    # Any JSON, so that tests can make the issuer answer with something that is not a key set.
    _key_sets[name] = key_set
    return Response(status_code=204)


@app.get("/jwks/{name}")
async def get_jwks(name: str) -> Any:
    _fetches[name] += 1
    return _key_sets.get(name, {"keys": []})


@app.get("/jwks/{name}/fetches")
async def count_fetches(name: str) -> dict[str, int]:
    return {"count": _fetches[name]}


@app.get("/not-json")
async def not_json() -> PlainTextResponse:
    return PlainTextResponse("this is not a key set")


@app.get("/echo")
async def echo(request: Request) -> dict[str, Any]:
    return {"headers": dict(request.headers), "url": str(request.url)}


@app.get("/set-cookie")
async def set_cookie() -> Response:
    response = Response(status_code=204)
    response.set_cookie("session", "for-one-user-only")
    return response


@app.get("/slow")
async def slow(seconds: float) -> dict[str, str]:
    await asyncio.sleep(seconds)
    return {"status": "late"}


_posts: Counter[str] = Counter()


@app.post("/posts/{name}")
async def receive_post(name: str, seconds: float = 0) -> dict[str, int]:
    """Count a POST as received, then answer after ``seconds``."""
    _posts[name] += 1
    await asyncio.sleep(seconds)
    return {"count": _posts[name]}


@app.get("/posts/{name}")
async def count_posts(name: str) -> dict[str, int]:
    return {"count": _posts[name]}
