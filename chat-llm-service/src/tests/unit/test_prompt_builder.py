"""Prompt engineering: search terms, compact grounding, and the budget arithmetic."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

from app.models.catalog_models import CatalogProduct
from app.services.errors import MessageTooLarge
from app.services.llm_integration import PromptMessage, ToolCallRequest
from app.services.prompt_builder import (
    SYSTEM_PROMPT,
    build_prompt,
    grounding_text,
    prompt_tokens_bound,
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


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400)


@st.composite
def _products(draw: st.DrawFn) -> list[CatalogProduct]:
    return [
        CatalogProduct(
            id=uuid.uuid4(),
            sku=draw(_TEXT),
            name=draw(_TEXT),
            description=draw(_TEXT),
            category=draw(_TEXT),
            price=Decimal(draw(st.integers(0, 10**30))) / 100,
            currency=draw(_TEXT),
            stock_available=draw(st.integers(0, 2**40)),
            updated_at=datetime.now(UTC),
        )
        for _ in range(draw(st.integers(0, 20)))
    ]


@settings(max_examples=60, deadline=None)
@given(
    message=_TEXT,
    history=st.lists(
        st.tuples(st.sampled_from(["user", "assistant", "calls", "tool"]), _TEXT), max_size=6
    ),
    products=_products(),
    searched=st.booleans(),
    tools=_TEXT,
)
async def test_the_bound_known_before_the_search_is_never_below_the_prompt(
    message: str,
    history: list[tuple[str, str]],
    products: list[CatalogProduct],
    searched: bool,
    tools: str,
) -> None:
    """The quota hold is taken before the grounding is known: it holds this bound, so the bound
    must cover any prompt (any text; as many products as it allows, of any field lengths; tool
    exchanges in the history; the tools' specs)."""
    encoding = _encoding()
    past = [_message(role, content) for role, content in history]
    grounding = grounding_text(products if searched else None)
    budget = 100_000 - 1_000

    prompt = await build_prompt(
        encoding=encoding,
        message=message,
        history=past,
        grounding=grounding,
        context_window=100_000,
        max_output_tokens=1_000,
        system="canary-1234567890\n" + SYSTEM_PROMPT,
        tools_tokens=len(encoding.encode(tools)),
    )
    bound = prompt_tokens_bound(
        message=message,
        history=past,
        grounding_products=max(1, len(products)),
        budget=budget,
        system="canary-1234567890\n" + SYSTEM_PROMPT,
        tools_tokens=len(tools.encode()),
    )

    assert prompt.prompt_tokens <= bound <= budget


def _message(role: str, content: str) -> PromptMessage:
    if role == "calls":
        call = ToolCallRequest("call_1", "search_products", content)
        return PromptMessage("assistant", "", tool_calls=(call,))
    if role == "tool":
        return PromptMessage("tool", content, tool_call_id="call_1")
    return PromptMessage("user" if role == "user" else "assistant", content)


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


def test_the_bound_never_exceeds_the_budget() -> None:
    bound = prompt_tokens_bound(
        message="word " * 10_000, history=[], grounding_products=5, budget=3_000
    )

    assert bound == 3_000


def test_the_bound_covers_the_longest_grounding_in_the_costliest_characters() -> None:
    """Every field beyond its clip length, in a character that costs a token per byte."""
    costly = "\U000e0061"  # a tag character: 4 bytes of UTF-8, 4 tokens of o200k_base
    products = [
        CatalogProduct(
            id=uuid.uuid4(),
            sku=costly * 100,
            name=costly * 200,
            description=costly * 300,
            category=costly * 100,
            price=Decimal("1" * 40),
            currency=costly * 100,
            stock_available=2**40,
            updated_at=datetime.now(UTC),
        )
        for _ in range(5)
    ]
    encoding = _encoding()
    grounding_tokens = len(encoding.encode(grounding_text(products)))

    bound = prompt_tokens_bound(message="", history=[], grounding_products=5, budget=10**9)

    assert grounding_tokens > 3 * len(grounding_text(products))  # the costly case indeed
    assert grounding_tokens < bound
