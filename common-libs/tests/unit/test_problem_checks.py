"""The test kit's problem type checks: the document's lists, and each problem+json answer."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from common_libs.errors import Conflict, NotFound, ProblemError
from common_libs.problems import install_problem_handlers, problem_responses
from common_libs.testing.problem_checks import (
    check_problem_type_answered,
    check_problem_types_documented,
    problem_type_findings,
    problem_type_hooks,
)


class ThingNotFound(NotFound):
    """No such thing."""

    type = "urn:fleet:test:thing-not-found"


class ThingLocked(Conflict):
    """The thing is locked."""

    type = "urn:fleet:test:thing-locked"


class Undocumented(Conflict):
    """A conflict no route names."""

    type = "urn:fleet:test:undocumented"


def build_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/things/mine", responses=problem_responses(ThingNotFound))
    async def my_things() -> None:
        raise NotFound("Not yours.")

    @app.get("/things/{thing_id}", responses=problem_responses(404))
    async def get_thing(thing_id: int) -> None:
        raise ThingNotFound

    @app.post("/things/{thing_id}/lock", responses=problem_responses(ThingLocked))
    async def lock_thing(thing_id: int, other: bool = False) -> None:
        raise Undocumented if other else ThingLocked

    @app.post("/things")
    async def add_thing() -> None:
        raise HTTPException(status_code=409, detail="blank")

    @app.get("/crash", responses=problem_responses(500))
    async def crash() -> None:
        raise ProblemError

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = build_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", event_hooks=problem_type_hooks(app)
    ) as client:
        yield client


def test_a_document_of_problem_responses_passes() -> None:
    check_problem_types_documented(build_app().openapi())


def broken(change: Any) -> list[str]:
    document = copy.deepcopy(build_app().openapi())
    change(document)
    return problem_type_findings(document)


def responses(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    result: dict[str, Any] = document["paths"][path][method]["responses"]
    return result


def test_a_missing_list_is_found() -> None:
    def drop(document: dict[str, Any]) -> None:
        del responses(document, "/things/mine", "get")["404"]["x-problem-types"]

    assert broken(drop) == [
        "GET /things/mine 404: no x-problem-types (which problem types answer it?)"
    ]


def test_a_type_outside_the_catalogue_or_of_another_status_is_found() -> None:
    def retype(document: dict[str, Any]) -> None:
        answers = responses(document, "/things/{thing_id}/lock", "post")
        answers["409"]["x-problem-types"] = ["urn:fleet:test:other"]
        answers["422"]["x-problem-types"] = [
            "urn:fleet:common:validation-failed",
            "urn:fleet:test:thing-locked",
        ]

    assert broken(retype) == [
        "POST /things/{thing_id}/lock 409: urn:fleet:test:other is not in the catalogue",
        "POST /things/{thing_id}/lock 422: urn:fleet:test:thing-locked is a 409 in the catalogue",
    ]


def test_an_unused_or_blank_catalogue_type_is_found() -> None:
    def add(document: dict[str, Any]) -> None:
        document["x-problem-types"].insert(
            0, {"type": "about:blank", "status": 409, "title": "Conflict", "description": ""}
        )

    assert broken(add) == [
        "about:blank is in the catalogue (it stays a plain status: 405, 500)",
        "about:blank: in the catalogue, answered by no operation",
    ]


def test_a_list_on_a_plain_status_is_found() -> None:
    def add(document: dict[str, Any]) -> None:
        responses(document, "/crash", "get")["500"] = {
            "description": "Internal Server Error",
            "x-problem-types": ["urn:fleet:common:not-found"],
        }

    assert broken(add) == ["GET /crash 500: lists problem types; it answers about:blank only"]


def test_an_unsorted_list_and_a_document_without_catalogue_are_found() -> None:
    def unsort(document: dict[str, Any]) -> None:
        answers = responses(document, "/things/{thing_id}", "get")
        answers["404"]["x-problem-types"].reverse()

    def drop(document: dict[str, Any]) -> None:
        del document["x-problem-types"]

    assert broken(unsort) == [
        "GET /things/{thing_id} 404: x-problem-types is not sorted, each once: "
        "['urn:fleet:test:thing-not-found', 'urn:fleet:common:not-found']"
    ]
    assert broken(drop) == ["the document has no top-level x-problem-types catalogue"]


def test_the_check_fails_with_every_finding() -> None:
    document = build_app().openapi()
    document["x-problem-types"] = []

    with pytest.raises(AssertionError, match="thing-not-found is not in the catalogue"):
        check_problem_types_documented(document)


async def test_documented_answers_pass_the_hook(client: httpx.AsyncClient) -> None:
    first = await client.get("/things/7")
    second = await client.post("/things/7/lock")

    assert first.json()["type"] == "urn:fleet:test:thing-not-found"
    assert second.json()["type"] == "urn:fleet:test:thing-locked"


async def test_a_literal_path_is_matched_before_a_template(client: httpx.AsyncClient) -> None:
    with pytest.raises(AssertionError, match=r"not-found is not documented for GET /things/mine"):
        await client.get("/things/mine")


async def test_an_undocumented_type_fails_the_request(client: httpx.AsyncClient) -> None:
    with pytest.raises(AssertionError, match=r"undocumented is not documented for POST"):
        await client.post("/things/7/lock", params={"other": True})


async def test_a_blank_type_fails_the_request(client: httpx.AsyncClient) -> None:
    with pytest.raises(AssertionError, match="a blank problem type: POST /things answered 409"):
        await client.post("/things")


async def test_405_500_and_unknown_paths_pass(client: httpx.AsyncClient) -> None:
    statuses = [
        (await client.delete("/things/mine")).status_code,
        (await client.get("/crash")).status_code,
        (await client.get("/nowhere")).status_code,
    ]

    assert statuses == [405, 500, 404]


async def test_answers_that_are_not_problems_pass(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200


def test_a_catalogue_out_of_order_and_a_list_on_a_success_are_found() -> None:
    def disorder(document: dict[str, Any]) -> None:
        document["x-problem-types"].reverse()
        answers = responses(document, "/things/{thing_id}", "get")
        answers["200"]["x-problem-types"] = ["urn:fleet:common:not-found"]

    [unsorted, success] = broken(disorder)

    assert unsorted.startswith("the catalogue is not sorted by type, each once: ")
    assert success == "GET /things/{thing_id} 200: a non-error response lists problem types"


def test_one_answer_is_checked_against_a_document() -> None:
    document = build_app().openapi()
    request = httpx.Request("POST", "http://test/things/7/lock")
    problem = {"type": "urn:fleet:test:undocumented", "status": 409}
    answer = httpx.Response(
        409, json=problem, headers={"content-type": "application/problem+json"}, request=request
    )
    plain = httpx.Response(409, json=problem, request=request)

    check_problem_type_answered(plain, document)
    with pytest.raises(AssertionError, match="undocumented is not documented"):
        check_problem_type_answered(answer, document)


async def test_a_problem_without_a_type_fails_the_request() -> None:
    app = FastAPI()

    async def untyped(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"title": "Odd"}, headers={"content-type": "application/problem+json"}
        )

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(untyped),
        base_url="http://test",
        event_hooks=problem_type_hooks(app),
    ) as client:
        with pytest.raises(AssertionError, match="a problem without a type: GET /odd"):
            await client.get("/odd")
