"""One trace across the fleet (API.md, "Telemetry"), as the services export it over OTLP/HTTP.

The session fleet exports every span to the tests' own receiver (``otlp`` in conftest). Each
test sends its request through the gateway with a ``traceparent`` of its own making, then reads
that trace from what the services exported, and the services' log lines that carry its id.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from common_libs.testing import LlmServer, Reply, wait_until
from common_libs.testing.otlp import OtlpReceiver, ReceivedSpan

from tests.conftest import CHAT_MODEL, TracedOrder
from tests.fleet import Fleet
from tests.support.shop import Account, Shop, bearer

ORDERS = "order-processing-service"
CATALOG = "product-catalog-service"
CHAT = "chat-llm-service"
USERS = "user-service"
RESERVATIONS = "/inventory/reservations"


@dataclass(frozen=True)
class Caller:
    """The span a client says its request comes from, as a ``traceparent``."""

    trace_id: str
    span_id: str

    @classmethod
    def new(cls) -> Caller:
        return cls(secrets.token_hex(16), secrets.token_hex(8))

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


@dataclass(frozen=True)
class Trace:
    """The spans of one trace that have arrived so far."""

    spans: list[ReceivedSpan]

    def of(self, service: str | None, kind: str, name: str | None = None) -> list[ReceivedSpan]:
        """The ``kind`` spans of ``service`` (None: of any service) named ``name`` (None: any)."""
        return [
            span
            for span in self.spans
            if service in (None, span.service) and span.kind == kind and name in (None, span.name)
        ]

    def children(
        self, parents: list[ReceivedSpan], service: str | None, kind: str
    ) -> list[ReceivedSpan]:
        ids = {parent.span_id for parent in parents}
        return [span for span in self.of(service, kind) if span.parent_span_id in ids]

    def under(self, root: ReceivedSpan) -> list[ReceivedSpan]:
        """``root``'s descendants."""
        found, frontier = [], {root.span_id}
        while frontier:
            step = [span for span in self.spans if span.parent_span_id in frontier]
            found += step
            frontier = {span.span_id for span in step}
        return found


def database_spans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [span for span in spans if span.attributes.get("db.system.name") == "postgresql"]


def answered_calls(trace: Trace, service: str) -> list[ReceivedSpan]:
    """The HTTP client spans of ``service`` that got an answer (a call that got none, say one
    repeated after its connection failed, may never have reached a server)."""
    return [
        span
        for span in trace.of(service, "CLIENT")
        if "http.response.status_code" in span.attributes
    ]


def wait_for_trace(
    otlp: OtlpReceiver, caller: Caller, complete: Callable[[Trace], bool], *, timeout: float = 15
) -> Trace:
    """The caller's trace once ``complete`` holds for it (else what arrived, for the asserts)."""

    def trace() -> Trace:
        return Trace(otlp.matching(lambda span: span.trace_id == caller.trace_id))

    # On a timeout, the assertions after it say what is missing.
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: complete(trace()), timeout=timeout, message="the whole trace arrived")
    return trace()


def logged_in_trace(fleet: Fleet, service: str, caller: Caller) -> list[dict[str, Any]]:
    """The JSON log lines of ``service`` that carry the caller's trace id."""
    lines = []
    for line in fleet.lines_of(service):
        if caller.trace_id in line:
            record = json.loads(line)
            if record.get("trace_id") == caller.trace_id:
                lines.append(record)
    return lines


@dataclass(frozen=True)
class TracedOrderPlaced:
    caller: Caller
    order: dict[str, Any]
    trace: Trace


def _order_trace_is_complete(trace: Trace) -> bool:
    """Every span the test asserts has arrived: each service exports in batches of its own, and
    a server span ends after its answer is sent, so it may come a batch after its caller's spans.

    The order service's server span ends after all its client spans, and one process exports its
    spans in the order they end: once that span is in, so is every call; the trace is complete
    when each call that got an answer has the server span of the service that gave it."""
    orders_server = trace.of(ORDERS, "SERVER", "POST /orders")
    calls = answered_calls(trace, ORDERS)
    answering = {span.parent_span_id for span in trace.children(calls, None, "SERVER")}
    catalog_producers = trace.of(CATALOG, "PRODUCER")
    return bool(
        orders_server
        and trace.of(ORDERS, "PRODUCER", "publish orders.order.confirmed")
        and trace.children(calls, CATALOG, "SERVER")
        and answering == {call.span_id for call in calls}
        and trace.children(catalog_producers, CHAT, "CONSUMER")
    )


@pytest.fixture(scope="module")
def traced_order(
    shop: Shop, admin: Account, otlp: OtlpReceiver, first_order: TracedOrder
) -> TracedOrderPlaced:
    """An order placed through the gateway under a traceparent of the test's, and its trace.

    Not the fleet's first order (``first_order``), which always asks user-service for the
    order service's token. This one may too: the cached token is renewed shortly before it
    expires (after some 14.5 minutes of a fleet's default 15), by whichever order comes next."""
    product = shop.add_product(admin, stock=5)
    customer = shop.new_customer()
    caller = Caller.new()

    response = shop.place_order(customer, (product["id"], 2), traceparent=caller.traceparent)

    assert response.status_code == 201, response.text
    trace = wait_for_trace(otlp, caller, _order_trace_is_complete)
    return TracedOrderPlaced(caller, response.json(), trace)


def test_an_order_is_one_trace_through_the_catalog_the_databases_and_the_broker(
    traced_order: TracedOrderPlaced,
) -> None:
    trace, caller = traced_order.trace, traced_order.caller

    # The order service continues the caller's trace (the gateway passes traceparent on).
    [server] = trace.of(ORDERS, "SERVER", "POST /orders")
    assert server.parent_span_id == caller.span_id
    assert server.attributes["http.route"] == "/orders"
    assert server.attributes["http.response.status_code"] == 201
    inside_orders = trace.under(server)
    # Its calls are client spans, each answered one the parent of one server span of the service
    # that answered: the catalog's reservation (held and committed in one call), user-service's
    # token grant when this order is the one that renews the order service's cached token, and
    # user-service's signing keys when it is the one that finds the cached keys stale (5 minutes:
    # a session that ran longer on a busy machine had this order fetch them).
    calls = [call for call in answered_calls(trace, ORDERS) if call in inside_orders]
    answering = trace.children(calls, None, "SERVER")
    assert sorted(span.parent_span_id or "" for span in answering) == sorted(
        call.span_id for call in calls
    )
    catalog_servers = [span for span in answering if span.service == CATALOG]
    assert {span.name for span in catalog_servers} == {f"POST {RESERVATIONS}"}
    assert {(span.service, span.name) for span in answering if span.service != CATALOG} <= {
        (USERS, "POST /auth/token"),
        (USERS, "GET /auth/jwks"),
    }
    # Database statements, as client spans with their text and never their values.
    for service in (ORDERS, CATALOG):
        statements = database_spans(trace.of(service, "CLIENT"))
        assert statements, f"{service} shows no database span"
        assert all("db.query.text" in span.attributes for span in statements)
    assert not any(
        traced_order.order["shipping_address"]["line1"] in str(span.attributes)
        for span in trace.spans
    )
    # The order's event goes out in a producer span of this trace...
    [confirmed] = trace.of(ORDERS, "PRODUCER", "publish orders.order.confirmed")
    assert confirmed.attributes["messaging.system"] == "nats"
    assert confirmed.attributes["cloudevents.event_subject"] == traced_order.order["id"]
    assert confirmed.parent_span_id in {span.span_id for span in [server, *inside_orders]}
    # ... and so does the catalog's stock change, which the chat's read model takes in a
    # consumer span that is the producer span's child. (No service consumes ORDERS today: a
    # consumer added later shows up here the same way.)
    stock_changes = trace.of(CATALOG, "PRODUCER", "publish catalog.product.updated")
    inside_catalog = catalog_servers + [
        span for catalog_server in catalog_servers for span in trace.under(catalog_server)
    ]
    assert stock_changes
    assert {span.parent_span_id for span in stock_changes} <= {
        span.span_id for span in inside_catalog
    }
    consumed = trace.children(stock_changes, CHAT, "CONSUMER")
    assert consumed
    assert all(span.attributes["fleet.event.outcome"] == "handled" for span in consumed)
    assert database_spans([span for consumer in consumed for span in trace.under(consumer)]), (
        "the chat's read model wrote nothing under its consumer span"
    )


def test_the_services_an_order_reaches_log_its_trace_id(
    fleet: Fleet, traced_order: TracedOrderPlaced
) -> None:
    trace, caller = traced_order.trace, traced_order.caller

    for service in (ORDERS, CATALOG):
        lines = logged_in_trace(fleet, service, caller)
        spans_of_service = {span.span_id for span in trace.spans if span.service == service}
        assert lines, f"{service} logged nothing with the trace id"
        assert {line["span_id"] for line in lines} <= spans_of_service
        assert all(line["request_id"] for line in lines)


def test_a_chat_turn_shows_its_genai_span_with_token_counts(
    fleet: Fleet, shop: Shop, fake_llm: LlmServer, otlp: OtlpReceiver
) -> None:
    customer = shop.new_customer()
    caller = Caller.new()
    fake_llm.enqueue(
        Reply(
            deltas=("We have", " lanterns."), usage={"prompt_tokens": 321, "completion_tokens": 17}
        )
    )

    answer = shop.client.post(
        f"{shop.endpoints.chat}/chat/generate_response",
        json={"message": "Do you sell lanterns?"},
        headers={**bearer(customer.access_token), "traceparent": caller.traceparent},
    )

    assert answer.status_code == 200, answer.text
    name = f"chat {CHAT_MODEL}"
    trace = wait_for_trace(
        otlp,
        caller,
        lambda trace: bool(
            trace.of(CHAT, "CLIENT", name)
            and trace.of(CHAT, "SERVER", "POST /chat/generate_response")
        ),
    )
    [server] = trace.of(CHAT, "SERVER", "POST /chat/generate_response")
    assert server.parent_span_id == caller.span_id
    [model_call] = trace.of(CHAT, "CLIENT", name)
    assert model_call in trace.under(server)
    assert model_call.attributes["gen_ai.operation.name"] == "chat"
    assert model_call.attributes["gen_ai.request.model"] == CHAT_MODEL
    assert model_call.attributes["gen_ai.usage.input_tokens"] == 321
    assert model_call.attributes["gen_ai.usage.output_tokens"] == 17
    assert "Do you sell lanterns?" not in str(model_call.attributes)
    assert logged_in_trace(fleet, CHAT, caller), "the chat logged nothing with the trace id"


def test_a_registration_is_traced_to_its_event_and_logged_with_the_trace_id(
    fleet: Fleet, shop: Shop, otlp: OtlpReceiver
) -> None:
    caller = Caller.new()
    email = f"traced-{secrets.token_hex(6)}@example.com"

    response = shop.client.post(
        f"{shop.endpoints.users}/users",
        json={"email": email, "password": "correct-horse-battery", "full_name": "Ada Lovelace"},
        headers={"traceparent": caller.traceparent},
    )

    assert response.status_code == 201, response.text
    trace = wait_for_trace(
        otlp,
        caller,
        lambda trace: bool(
            trace.of(USERS, "PRODUCER", "publish users.user.registered")
            and trace.of(USERS, "SERVER", "POST /users")
        ),
    )
    [server] = trace.of(USERS, "SERVER", "POST /users")
    assert server.parent_span_id == caller.span_id
    assert database_spans(trace.under(server))
    [registered] = trace.of(USERS, "PRODUCER", "publish users.user.registered")
    assert registered.parent_span_id in {span.span_id for span in [server, *trace.under(server)]}
    assert not any(email in str(span.attributes) for span in trace.spans)
    assert logged_in_trace(fleet, USERS, caller), "user-service logged nothing with the trace id"
