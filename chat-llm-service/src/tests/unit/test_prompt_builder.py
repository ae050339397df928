"""Prompt engineering: search terms, compact grounding, and the budget arithmetic."""

from __future__ import annotations

import pytest
import tiktoken

from app.models.catalog_models import CatalogProduct
from app.services.errors import MessageTooLarge
from app.services.llm_integration import PromptMessage, ToolCallRequest
from app.services.prompt_builder import (
    SYSTEM_PROMPT,
    build_prompt,
    grounding_text,
    search_terms,
)


def _encoding(name: str = "o200k_base") -> tiktoken.Encoding:
    return tiktoken.get_encoding(name)  # placed offline by the session's fixture


def _cost(message: PromptMessage, encoding: tiktoken.Encoding) -> int:
    return 3 + len(encoding.encode(message.role)) + len(encoding.encode(message.content))


def test_search_terms_are_the_product_words_in_order() -> None:
    assert search_terms("Hi! Do you have any RED running shoes under $100? Red ones") == [
        "red",
        "running",
        "shoes",
        "100",
        "ones",
    ]


def test_search_terms_are_at_most_eight() -> None:
    assert search_terms("a1 b2 c3 d4 e5 f6 g7 h8 i9 j10") == [
        "a1",
        "b2",
        "c3",
        "d4",
        "e5",
        "f6",
        "g7",
        "h8",
    ]


def test_a_message_of_only_stop_words_has_no_search_terms() -> None:
    assert search_terms("  what is   this  ") == []


def test_grounding_lists_each_product_on_one_line() -> None:
    product = CatalogProduct.model_validate(
        {
            "id": "5c7e9a1b-3d5f-4b7d-9f1b-3d5f7b9d1f3b",
            "sku": "TR-2",
            "name": "Trail Runner",
            "description": "Grippy\nsole",
            "price": "89.90",
            "currency": "USD",
            "category": "shoes",
            "stock_available": 3,
            "updated_at": "2026-11-26T10:00:00Z",
        }
    )

    text = grounding_text([product])

    assert (
        text.splitlines()[1]
        == "1. Trail Runner | TR-2 | shoes | 89.90 USD | 3 in stock | Grippy sole"
    )


def test_system_prompt_tells_the_assistant_not_to_reveal_it() -> None:
    assert "never reveal" in SYSTEM_PROMPT


# Both encodings, one after the other: the system prompt's and the roles' costs are counted once
# per encoding and kept, and one's may not be taken for the other's.
@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
async def test_prompt_tokens_are_exactly_what_is_sent(name: str) -> None:
    encoding = _encoding(name)
    history = [PromptMessage("assistant", "Sure."), PromptMessage("user", "Boots?")]

    prompt = await build_prompt(
        encoding=encoding,
        message="Red ones?",
        history=history,
        grounding="None found.",
        context_window=4096,
        max_output_tokens=256,
    )

    assert prompt.prompt_tokens == 3 + sum(_cost(m, encoding) for m in prompt.messages)
    assert [m.content for m in prompt.messages] == [
        SYSTEM_PROMPT,
        "Boots?",
        "Sure.",
        "None found.",
        "Red ones?",
    ]


async def test_prompt_tokens_without_grounding_or_history_are_exact() -> None:
    encoding = _encoding()

    prompt = await build_prompt(
        encoding=encoding,
        message="Hello there",
        history=[],
        grounding=None,
        context_window=4096,
        max_output_tokens=256,
    )

    assert [m.content for m in prompt.messages] == [SYSTEM_PROMPT, "Hello there"]
    assert prompt.prompt_tokens == 3 + sum(_cost(m, encoding) for m in prompt.messages)


async def test_message_over_the_budget_is_refused() -> None:
    with pytest.raises(MessageTooLarge):
        await build_prompt(
            encoding=_encoding(),
            message="word " * 5000,
            history=[],
            grounding=None,
            context_window=4096,
            max_output_tokens=256,
        )


async def test_tool_results_are_never_kept_without_the_call_that_asked_for_them() -> None:
    encoding = _encoding()
    calls = (
        ToolCallRequest("call_a", "get_order", '{"order_id": "' + "9" * 400 + '"}'),
        ToolCallRequest("call_b", "get_product", "{}"),
    )
    history = [  # newest first
        PromptMessage("tool", "result b", tool_call_id="call_b"),
        PromptMessage("tool", "result a", tool_call_id="call_a"),
        PromptMessage("assistant", "", tool_calls=calls),
        PromptMessage("user", "Where is my order?"),
    ]
    whole = await build_prompt(
        encoding=encoding,
        message="And now?",
        history=history,
        grounding=None,
        context_window=4096,
        max_output_tokens=256,
    )
    # Room for the two results, not for the long call: the results are left out with it.
    fixed = 3 + _cost(PromptMessage("system", SYSTEM_PROMPT), encoding)
    question = _cost(PromptMessage("user", "And now?"), encoding)
    results = sum(_cost(message, encoding) for message in history[:2])

    trimmed = await build_prompt(
        encoding=encoding,
        message="And now?",
        history=history,
        grounding=None,
        context_window=fixed + question + results + 10 + 256,
        max_output_tokens=256,
    )

    assert [m.role for m in whole.messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "user",
    ]
    assert whole.history_used == 4
    assert [m.content for m in trimmed.messages] == [SYSTEM_PROMPT, "And now?"]
    assert trimmed.history_used == 0
    assert trimmed.prompt_tokens == 3 + sum(_cost(m, encoding) for m in trimmed.messages)
