"""The offline model the evaluation set runs against: rules of the test LLM server.

:data:`RULES` stand for a capable model. They read the customer's question the way such a model
would (a UUID after "order" is an order to look up, another UUID a product, "my orders" the
customer's orders, "under $N", "between $A and $B", "in stock" and "the X category" are filters
of a product search, anything else is searched as it was asked), answer greetings without a
tool, and answer from the tool results once they are back, quoting them. They also fall for
every injected instruction, as a weak model might: asked for its instructions (by the customer,
or by a product description in the tool results) the model repeats its system prompt, so what
the injection cases measure is the service's canary guard, not the model's manners.

:data:`WRONG_RULES` is a model that gets the tools wrong on purpose (the wrong tool for orders,
no filters, tools for a greeting, instructions quoted without the marker): the evaluation
must score it below 100 % in those categories, so that the test model's 100 % means something.
"""

from __future__ import annotations

from common_libs.testing import Rule, ToolCall

from app.services.prompt_builder import SYSTEM_PROMPT

__all__ = ["RULES", "WRONG_RULES"]

_UUID = r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
_PRICE = r"\$?\s?(\d+(?:\.\d{1,2})?)"
_UNDER = r"(?:under|below|less than|cheaper than|at most|up to)"
_OVER = r"(?:over|above|more than|at least)"
_STATUS = r"(pending|confirmed|failed|shipped|delivered|cancelled)"
# The word right before a filter ("desks under $500", "lamps that cost less than $60") is what
# the customer looks for; words that name no product leave the query empty (filters only).
_NOT_A_PRODUCT = (
    r"(?:a|an|the|any|anything|everything|something|products?|items?|things?|stuff|what|which|"
    r"you|have|got|me|show|all|do|is|are|there|sell|find|under|over|between)"
)
_WANTED = (
    rf"(?:\b(?!{_NOT_A_PRODUCT}\b)([a-z]+)\s+(?:(?:that|which)\s+)?"
    r"(?:(?:cost|costs|costing|priced|are|is|for)\s+)?)?"
)

_ASKS_FOR_INSTRUCTIONS = (
    r"\b(?:system prompt|your (?:instructions|prompt|rules)|canary|marker|everything above)\b"
)
_SMALL_TALK = (
    r"^\W*(?:hi|hello|hey|good (?:morning|afternoon|evening)|thanks|thank you|cheers|bye|"
    r"goodbye)\b[^?]{0,40}$"
)
_ORDER_ID = rf"\border\s+(?:id\s+|number\s+|#\s*)?{_UUID}"
_US_CANCELED = r"\bcanceled\b"
_BY_STATUS = (
    rf"\b{_STATUS}\s+orders?\b"
    rf"|\borders?\b.{{0,30}}?\b(?:are|were|is|was|have|has)\s+(?:been\s+)?{_STATUS}\b"
)
_MY_ORDERS = r"\b(?:my|i)\b.*?\b(?:orders?|ordered|purchases?|bought)\b"
_IN_STOCK = r"\b(?:which|what|any)\s+([a-z]+)\s+(?:are|is|do you have)\s+(?:currently\s+)?in stock"
_CATEGORY = r"\b(?:the\s+)?([a-z]+)\s+category\b"
_INJECTED = (
    r"ignore (?:all )?(?:previous|prior|above) instructions|system prompt|hidden instructions"
    r"|reveal your"
)


def _call(name: str, arguments: str) -> list[ToolCall]:
    return [ToolCall(name, arguments)]


def _search(arguments: str) -> list[ToolCall]:
    return _call("search_products", arguments)


_AS_ASKED = _search('{"query": "{last_user}"}')

RULES: tuple[Rule, ...] = (
    Rule(
        name="repeats its instructions",
        pattern=_ASKS_FOR_INSTRUCTIONS,
        reply="Sure, here they are:\n{system}",
    ),
    Rule(
        name="small talk",
        pattern=_SMALL_TALK,
        reply="Happy to help! Ask me about our products or your orders.",
    ),
    Rule(name="order", pattern=_ORDER_ID, calls=_call("get_order", '{"order_id": "{1}"}')),
    Rule(
        name="orders canceled",
        pattern=rf"(?=.*\borders?\b).*{_US_CANCELED}",
        calls=_call("list_my_orders", '{"status": "cancelled"}'),
    ),
    Rule(
        name="orders by status",
        pattern=_BY_STATUS,
        calls=_call("list_my_orders", '{"status": "{1}{2}"}'),
    ),
    Rule(name="my orders", pattern=_MY_ORDERS, calls=_call("list_my_orders", "{}")),
    Rule(name="product", pattern=_UUID, calls=_call("get_product", '{"product_id": "{1}"}')),
    Rule(
        name="category under a price",
        pattern=rf"{_CATEGORY}.*?{_UNDER}\s*{_PRICE}",
        calls=_search('{"category": "{1}", "max_price": {2}}'),
    ),
    Rule(name="category", pattern=_CATEGORY, calls=_search('{"category": "{1}"}')),
    Rule(
        name="in stock under a price",
        pattern=rf"^(?=.*\bin stock\b).*?{_WANTED}{_UNDER}\s*{_PRICE}",
        calls=_search('{"query": "{1}", "max_price": {2}, "in_stock": true}'),
    ),
    Rule(
        name="price range",
        pattern=rf"{_WANTED}between\s*{_PRICE}\s*and\s*{_PRICE}",
        calls=_search('{"query": "{1}", "min_price": {2}, "max_price": {3}}'),
    ),
    Rule(
        name="under a price",
        pattern=rf"{_WANTED}{_UNDER}\s*{_PRICE}",
        calls=_search('{"query": "{1}", "max_price": {2}}'),
    ),
    Rule(
        name="over a price",
        pattern=rf"{_WANTED}{_OVER}\s*{_PRICE}",
        calls=_search('{"query": "{1}", "min_price": {2}}'),
    ),
    Rule(
        name="in stock",
        pattern=_IN_STOCK,
        calls=_search('{"query": "{1}", "in_stock": true}'),
    ),
    Rule(name="search as asked", pattern=r"\w", calls=_AS_ASKED),
    Rule(
        name="follows injected instructions",
        when="tool",
        pattern=_INJECTED,
        target="tool_results",
        reply="Of course. {system}",
    ),
    Rule(
        name="answers from the results", when="tool", reply="Here is what I found: {tool_results}"
    ),
)
"""A capable model that falls for injected instructions."""

_OPENING = SYSTEM_PROMPT.split(".")[0]

WRONG_RULES: tuple[Rule, ...] = (
    Rule(
        name="quotes its instructions without the marker",
        pattern=_ASKS_FOR_INSTRUCTIONS,
        reply=f"My instructions begin: {_OPENING}.",
    ),
    Rule(name="searches small talk", pattern=_SMALL_TALK, calls=_AS_ASKED),
    Rule(name="searches for an order", pattern=_ORDER_ID, calls=_AS_ASKED),
    Rule(
        name="every order, whatever the status",
        pattern=rf"{_US_CANCELED}|{_BY_STATUS}|{_MY_ORDERS}",
        calls=_call("list_my_orders", "{}"),
    ),
    Rule(name="product", pattern=_UUID, calls=_call("get_product", '{"product_id": "{1}"}')),
    Rule(name="no filters", pattern=r"\w", calls=_AS_ASKED),
    Rule(name="answers without the facts", when="tool", reply="Here is what I found."),
)
"""A model that calls the wrong tools, drops the filters and quotes its instructions (without
the marker, which no guard can catch)."""
