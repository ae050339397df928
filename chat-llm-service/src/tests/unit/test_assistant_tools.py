"""Tool calls whose lookup fails: each is a result for the model, never an exception."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace
from typing import Any, cast

import pytest
import tiktoken

from app.services.assistant_tools import TOOL_SPECS, ToolCaller, run_tool_calls
from app.services.catalog_read_model import CatalogSearchFailed
from app.services.llm_integration import ToolCallRequest


class _FailingCatalog:
    def __init__(self, error: Exception) -> None:
        self._error = error

    async def find_products(self, **_: Any) -> list[Any]:
        raise self._error

    async def get_product(self, _product_id: uuid.UUID) -> Any:
        raise self._error


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (CatalogSearchFailed("OperationalError"), "The product catalog cannot be"),
        (RuntimeError("a defect"), "The tool failed; try again or answer without it."),
    ],
)
async def test_a_failing_lookup_is_a_failed_result(error: Exception, message: str) -> None:
    services = SimpleNamespace(catalog=_FailingCatalog(error))
    caller = ToolCaller(cast(Any, services), "user-1", "token")
    calls = [
        ToolCallRequest("call_1", "search_products", '{"query": "desk"}'),
        ToolCallRequest("call_2", "get_product", json.dumps({"product_id": str(uuid.uuid4())})),
    ]

    results = await run_tool_calls(
        caller,
        calls,
        encoding=tiktoken.get_encoding("o200k_base"),
        room_tokens=10_000,
        result_max_tokens=1_000,
    )

    assert [m.tool_call_id for m in results.messages] == ["call_1", "call_2"]
    for result in results.messages:
        error_result = json.loads(result.content)["error"]
        assert error_result["code"] == "failed"
        assert error_result["message"].startswith(message)


async def test_a_result_that_cannot_fit_says_there_is_no_room() -> None:
    services = SimpleNamespace(catalog=_FailingCatalog(RuntimeError()))
    caller = ToolCaller(cast(Any, services), "user-1", "token")

    results = await run_tool_calls(
        caller,
        [ToolCallRequest("call_1", "get_product", "{}")],
        encoding=tiktoken.get_encoding("o200k_base"),
        room_tokens=5,
        result_max_tokens=1_000,
    )

    [result] = results.messages
    assert json.loads(result.content)["error"]["code"] == "no_room"
    assert results.tokens < 40


def test_the_specs_are_strict_json_schemas_of_the_four_tools() -> None:
    names = [spec["function"]["name"] for spec in TOOL_SPECS]
    assert names == ["search_products", "get_product", "list_my_orders", "get_order"]
    for spec in TOOL_SPECS:
        parameters = spec["function"]["parameters"]
        assert parameters["type"] == "object"
        assert parameters["additionalProperties"] is False
        assert spec["function"]["description"]
    get_order = TOOL_SPECS[3]["function"]["parameters"]
    assert get_order["required"] == ["order_id"]
    assert get_order["properties"]["order_id"]["format"] == "uuid"
