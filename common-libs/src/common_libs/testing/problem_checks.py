"""The problem types an app documents, and the ones it answers, agree.

Two checks for every service:

- :func:`check_problem_types_documented` reads an OpenAPI document: every error response of every
  operation lists its ``x-problem-types`` (405 and 500, plain ``about:blank`` statuses, list
  none), each listed type is in the top-level catalogue with the same status, every catalogue type
  is listed by some operation, and ``about:blank`` is no catalogue type. It is one of the fleet's
  app conventions (:data:`common_libs.testing.app_checks.APP_CONVENTIONS`).
- :func:`problem_type_hooks` makes an ``httpx`` client check each problem+json answer as it
  arrives: its ``type`` is not blank and is one the operation documents for that status. A
  service's HTTP fixtures bind it in one line, so that every error-path test checks it::

      httpx.AsyncClient(transport=..., base_url=..., event_hooks=problem_type_hooks(app))
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
from fastapi import FastAPI

from common_libs.problem_openapi import PROBLEM_CONTENT_TYPE, PROBLEM_TYPES_KEY
from common_libs.problem_types import ABOUT_BLANK

__all__ = [
    "BLANK_STATUSES",
    "ResponseHook",
    "check_problem_type_answered",
    "check_problem_types_documented",
    "problem_type_findings",
    "problem_type_hooks",
]

BLANK_STATUSES = frozenset({"405", "500"})
"""The statuses that stay ``about:blank``: nothing more to say than the status."""

ResponseHook = Callable[[httpx.Response], Awaitable[None]]

_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _operations(document: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {
        (method, path): operation
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in _METHODS
    }


def problem_type_findings(document: Mapping[str, Any]) -> list[str]:
    """What is wrong with the problem types of an OpenAPI ``document`` (``[]``: nothing)."""
    found: list[str] = []
    catalogue = document.get(PROBLEM_TYPES_KEY)
    if not isinstance(catalogue, list):
        return [f"the document has no top-level {PROBLEM_TYPES_KEY} catalogue"]
    statuses = {entry["type"]: entry["status"] for entry in catalogue}
    names = [entry["type"] for entry in catalogue]
    if names != sorted(set(names)):
        found.append(f"the catalogue is not sorted by type, each once: {names}")
    if ABOUT_BLANK in statuses:
        found.append("about:blank is in the catalogue (it stays a plain status: 405, 500)")
    used: set[str] = set()
    for (method, path), operation in _operations(document).items():
        for status, response in operation.get("responses", {}).items():
            where = f"{method.upper()} {path} {status}"
            listed = response.get(PROBLEM_TYPES_KEY)
            if str(status)[:1] not in {"4", "5"}:
                if listed is not None:
                    found.append(f"{where}: a non-error response lists problem types")
                continue
            if str(status) in BLANK_STATUSES:
                if listed is not None:
                    found.append(f"{where}: lists problem types; it answers about:blank only")
                continue
            if not listed:
                found.append(f"{where}: no {PROBLEM_TYPES_KEY} (which problem types answer it?)")
                continue
            if listed != sorted(set(listed)):
                found.append(f"{where}: {PROBLEM_TYPES_KEY} is not sorted, each once: {listed}")
            for name in listed:
                if name not in statuses:
                    found.append(f"{where}: {name} is not in the catalogue")
                elif str(statuses[name]) != str(status):
                    found.append(f"{where}: {name} is a {statuses[name]} in the catalogue")
            used.update(listed)
    found += [
        f"{name}: in the catalogue, answered by no operation" for name in names if name not in used
    ]
    return found


def check_problem_types_documented(document: Mapping[str, Any]) -> None:
    """Every error response of ``document`` lists problem types of its catalogue, and every
    catalogue type is answered somewhere (see the module's docstring)."""
    found = problem_type_findings(document)
    assert not found, "problem types documented wrongly:\n" + "\n".join(found)


def _template(path: str) -> re.Pattern[str]:
    """A regular expression that matches the request paths of an OpenAPI path template."""
    parts = re.split(r"(\{[^}]+\})", path)
    return re.compile(
        "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts) + "$"
    )


class _Operations:
    """An app's documented operations, found by request method and path."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        # Literal paths before templates (``/orders/mine`` before ``/orders/{order_id}``).
        ordered = sorted(_operations(document).items(), key=lambda item: item[0][1].count("{"))
        self._operations = [
            (method, _template(path), path, operation) for (method, path), operation in ordered
        ]

    def find(self, method: str, path: str) -> tuple[str, Mapping[str, Any]] | None:
        for known_method, template, template_path, operation in self._operations:
            if known_method == method.lower() and template.match(path):
                return template_path, operation
        return None


def check_problem_type_answered(response: httpx.Response, document: Mapping[str, Any]) -> None:
    """A problem+json ``response`` (read already) has a type its operation documents for its
    status; an answer of no documented operation (an unknown path), a type that is not blank.
    Other answers, and 405 and 500, pass."""
    if _is_checked(response):
        _check_answer(response, _Operations(document))


def _is_checked(response: httpx.Response) -> bool:
    """Whether ``response`` is a problem whose type must be documented (not a 405 or 500)."""
    content_type = response.headers.get("content-type", "")
    return content_type.startswith(PROBLEM_CONTENT_TYPE) and (
        str(response.status_code) not in BLANK_STATUSES
    )


def _check_answer(response: httpx.Response, operations: _Operations) -> None:
    status = str(response.status_code)
    request = response.request
    said = f"{request.method} {request.url.path} answered {status}: {response.text}"
    problem_type = response.json().get("type")
    assert problem_type, f"a problem without a type: {said}"
    assert problem_type != ABOUT_BLANK, f"a blank problem type: {said}"
    found = operations.find(request.method, request.url.path)
    if found is None:
        return
    path, operation = found
    listed = operation.get("responses", {}).get(status, {}).get(PROBLEM_TYPES_KEY, [])
    assert problem_type in listed, (
        f"{problem_type} is not documented for {request.method} {path} {status} "
        f"(documented: {listed}): {said}"
    )


def problem_type_hooks(app: FastAPI) -> dict[str, list[ResponseHook]]:
    """``event_hooks`` for an ``httpx.AsyncClient`` of ``app``: each problem+json answer is
    checked by :func:`check_problem_type_answered` against ``app.openapi()`` (a failure raises
    ``AssertionError`` from the request)."""

    operations: list[_Operations] = []  # read from the document at the first problem

    async def check(response: httpx.Response) -> None:
        if not _is_checked(response):
            return
        if not operations:
            operations.append(_Operations(app.openapi()))
        await response.aread()
        _check_answer(response, operations[0])

    return {"response": [check]}
