"""The OpenAI-compatible test server over real HTTP: its wire protocol and its script."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from common_libs.testing import (
    Failure,
    Hang,
    LlmControl,
    LlmServer,
    Reply,
    Rule,
    ToolCall,
    ToolCalls,
    UvicornThread,
    wait_until,
)
from common_libs.testing.llm_server import app

CHAT = "/v1/chat/completions"
STREAMED = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}], "stream": True}


@pytest.fixture(scope="module")
def server() -> Iterator[UvicornThread]:
    """The app in a thread of this process (so that its coverage counts), lifespan on."""
    with UvicornThread(app, lifespan="on") as running:
        yield running


@pytest.fixture
def llm(server: UvicornThread) -> LlmControl:
    control = LlmControl(server.url)
    control.reset()
    return control


@pytest.fixture
def sdk(llm: LlmControl) -> Iterator[openai.OpenAI]:
    """The real OpenAI SDK pointed at the test server."""
    with openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0) as client:
        yield client


def chat(llm: LlmControl, **body: Any) -> httpx.Response:
    payload = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}], **body}
    return httpx.post(llm.base_url + "/chat/completions", json=payload, timeout=10)


def events(response: httpx.Response) -> list[Any]:
    """The data of each server-sent event, decoded (``[DONE]`` as is)."""
    data = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    return [item if item == "[DONE]" else json.loads(item) for item in data]


def test_completion_answers_the_default_reply_with_usage(llm: LlmControl) -> None:
    response = chat(llm)

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-test"
    assert body["choices"][0]["message"]["content"] == "Hello from the test server."
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 42, "completion_tokens": 5, "total_tokens": 47}


def test_every_request_is_recorded_with_its_headers_and_body(llm: LlmControl) -> None:
    chat(llm, stream=False)

    [received] = llm.requests(CHAT)
    assert received.method == "POST"
    assert received.headers["content-type"] == "application/json"
    assert received.message_texts() == ["Hi"]
    assert llm.chat_requests() == [received.body]
    assert llm.requests("/v1/embeddings") == []


def test_stream_sends_chunks_then_usage_then_done(llm: LlmControl) -> None:
    llm.enqueue(Reply(deltas=("Hel", "lo"), usage={"prompt_tokens": 3, "completion_tokens": 2}))

    response = chat(llm, stream=True, stream_options={"include_usage": True})

    assert response.headers["content-type"] == "text/event-stream"
    *chunks, usage, done = events(response)
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert done == "[DONE]"


def test_stream_record_tells_what_was_sent_and_the_first_token_time(llm: LlmControl) -> None:
    payload = {**STREAMED, "stream_options": None}
    httpx.post(llm.base_url + "/chat/completions", json=payload, headers={"X-Request-ID": "r-1"})

    [record] = llm.streams()
    assert (record.request_id, record.sent, record.finished) == ("r-1", 5, True)
    assert record.closed_by_client is False
    assert record.first_token_seconds is not None
    assert record.first_token_seconds > 0


def test_stream_waits_at_its_gate_until_released(llm: LlmControl) -> None:
    llm.enqueue(Reply(deltas=("a", "b", "c"), gate="rest", gate_after=1, delay_seconds=0.001))

    with httpx.stream("POST", llm.base_url + "/chat/completions", json=STREAMED) as response:
        lines = response.iter_lines()
        first_content = [next(lines) for _ in range(4)][-2]
        held = llm.streams()[-1]
        llm.release("rest")
        rest = list(lines)

    assert json.loads(first_content.removeprefix("data: "))["choices"][0]["delta"] == {
        "content": "a"
    }
    assert (held.sent, held.finished) == (1, False)
    assert "data: [DONE]" in rest
    assert llm.streams()[-1].finished is True


def test_client_leaving_at_a_gate_is_recorded(llm: LlmControl) -> None:
    llm.enqueue(Reply(deltas=("a", "b"), gate="never", gate_after=1))

    with httpx.stream("POST", llm.base_url + "/chat/completions", json=STREAMED) as response:
        next(response.iter_lines())

    wait_until(lambda: llm.streams()[-1].closed_by_client, timeout=5, message="client left")
    assert llm.streams()[-1].sent == 1
    assert llm.streams()[-1].finished is False


def test_abort_drops_the_connection_mid_stream(llm: LlmControl) -> None:
    llm.enqueue(Reply(deltas=("a", "b"), abort_after=1))

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(llm.base_url + "/chat/completions", json=STREAMED)

    assert llm.streams()[-1].sent == 1
    assert llm.streams()[-1].finished is False


def test_tool_calls_answer_in_one_message(llm: LlmControl) -> None:
    call = ToolCall(name="search_products", arguments='{"q": "walnut desk"}', id="call_1")
    llm.enqueue(ToolCalls(calls=[call]))

    body = chat(llm).json()

    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "search_products", "arguments": '{"q": "walnut desk"}'},
        }
    ]


def test_streamed_tool_calls_arrive_in_fragments_a_client_joins(llm: LlmControl) -> None:
    calls = [
        ToolCall(name="search_products", arguments='{"q": "walnut desk", "limit": 3}'),
        ToolCall(name="get_stock", arguments='{"sku": "D-1"}', id="call_2"),
    ]
    llm.enqueue(ToolCalls(calls=calls))

    *chunks, done = events(chat(llm, stream=True))

    joined: dict[int, dict[str, str]] = {}
    for chunk in chunks[1:-1]:
        [piece] = chunk["choices"][0]["delta"]["tool_calls"]
        call = joined.setdefault(piece["index"], {"arguments": ""})
        call.update({key: piece[key] for key in ("id", "type") if key in piece})
        call["name"] = piece["function"].get("name", call.get("name", ""))
        call["arguments"] += piece["function"]["arguments"]
    assert joined == {
        0: {
            "id": "call_test_0",
            "type": "function",
            "name": "search_products",
            "arguments": '{"q": "walnut desk", "limit": 3}',
        },
        1: {"id": "call_2", "type": "function", "name": "get_stock", "arguments": '{"sku": "D-1"}'},
    }
    assert len(chunks) > 6  # the arguments came in several fragments
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert done == "[DONE]"


def test_scripted_failure_answers_its_status_headers_and_body(llm: LlmControl) -> None:
    llm.enqueue(
        Failure(429, headers={"Retry-After-Ms": "10"}),
        Failure(400, body={"error": {"message": "bad", "code": "x"}}),
    )

    limited, bad, fine = chat(llm), chat(llm), chat(llm)

    assert limited.status_code == 429
    assert limited.headers["retry-after-ms"] == "10"
    assert limited.json()["error"]["type"] == "server_error"
    assert (bad.status_code, bad.json()) == (400, {"error": {"message": "bad", "code": "x"}})
    assert fine.status_code == 200


def test_hang_never_answers(llm: LlmControl) -> None:
    llm.enqueue(Hang())

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(llm.base_url + "/chat/completions", json=STREAMED, timeout=0.3)

    assert len(llm.chat_requests()) == 1


def test_embeddings_answer_floats_or_base64_in_input_order(llm: LlmControl) -> None:
    url = llm.base_url + "/embeddings"
    floats = httpx.post(url, json={"model": "emb", "input": ["red boots", "tea"]}).json()
    packed = httpx.post(url, json={"input": "tea", "encoding_format": "base64"}).json()

    assert [(d["index"], d["embedding"][:2]) for d in floats["data"]] == [
        (0, [9.0, 0.0]),
        (1, [3.0, 1.0]),
    ]
    assert floats["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert floats["model"] == "emb"
    raw = base64.b64decode(packed["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw))[:2] == [3.0, 0.0]


def test_embeddings_have_a_script_of_their_own(llm: LlmControl) -> None:
    llm.enqueue(Failure(503), endpoint="embeddings")

    failed = httpx.post(llm.base_url + "/embeddings", json={"input": "tea"})

    assert failed.status_code == 503
    assert chat(llm).status_code == 200


def test_health_answers_200(llm: LlmControl) -> None:
    assert httpx.get(llm.url + "/health").json() == {"status": "ok"}


def test_unknown_paths_answer_404_as_openai_errors(llm: LlmControl) -> None:
    api = httpx.get(llm.base_url + "/models")
    control = httpx.post(llm.url + "/_control/nothing")

    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"
    assert control.status_code == 404


def test_reset_forgets_scripts_and_recordings(llm: LlmControl) -> None:
    llm.enqueue(Failure(500))
    chat(llm, stream=True)
    llm.enqueue(Failure(500))

    llm.reset()

    assert llm.requests() == []
    assert llm.streams() == []
    assert chat(llm).status_code == 200


def test_configured_api_key_is_required(llm: LlmControl, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_SERVER_API_KEY", "sk-right")

    wrong = httpx.post(llm.base_url + "/embeddings", json={"input": "x"})
    right = httpx.post(
        llm.base_url + "/embeddings",
        json={"input": "x"},
        headers={"Authorization": "Bearer sk-right"},
    )

    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert right.status_code == 200


def accepted_sockets(port: int) -> list[socket.socket]:
    """This process's sockets accepted on ``port``: the in-thread server's connections."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue
        try:
            sock.getpeername()
            if sock.family == socket.AF_INET and sock.getsockname()[1] == port:
                found.append(sock)
                continue
        except OSError:
            pass
        sock.close()
    return found


def test_connections_send_each_chunk_at_once(llm: LlmControl, server: UvicornThread) -> None:
    # Nagle's algorithm would hold a small chunk until the previous one is acknowledged.
    llm.enqueue(Reply(gate="g", gate_after=0))
    with httpx.stream("POST", llm.base_url + "/chat/completions", json=STREAMED) as response:
        lines = response.iter_lines()
        next(lines)
        sockets = accepted_sockets(server.port)
        llm.release("g")

    assert sockets
    assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)
    for sock in sockets:
        sock.close()


def test_server_process_answers_through_its_handle(tmp_path: Path) -> None:
    with LlmServer(log_path=tmp_path / "llm.log", api_key="sk-test") as llm:
        llm.enqueue(Reply(deltas=("Fine.",)))
        headers = {"Authorization": f"Bearer {llm.api_key}"}
        response = httpx.post(
            llm.base_url + "/chat/completions", json={"messages": []}, headers=headers
        )

    assert response.json()["choices"][0]["message"]["content"] == "Fine."
    assert Reply(deltas=("Fine.",)).content == "Fine."
    assert llm.process.process is not None
    assert llm.process.process.returncode is not None


def function(name: str) -> dict[str, Any]:
    """A tool the request offers the model."""
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


TOOLS: Any = [function("search_products"), function("get_stock")]
SEARCH = Rule(
    name="search",
    pattern=r"find (.+?)(?: under (\d+))?$",
    calls=[
        ToolCall("search_products", '{"query": "{1}", "max_price": "{2}", "raw": {"q": "{x}"}}'),
        ToolCall("get_stock", '{"sku": "D-{0}"}', id="ignored"),
    ],
)


def test_question_matching_a_rule_gets_its_tool_calls_with_escaped_arguments(
    llm: LlmControl, sdk: openai.OpenAI
) -> None:
    llm.set_rules(Rule(name="greeting", pattern="^hello", reply="Hi."), SEARCH)
    question = 'Find a "walnut" desk\\ for\ntwo'

    answer = sdk.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": question}], tools=TOOLS
    )

    [choice] = answer.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [(c.id, c.type, c.function.name) for c in calls] == [
        ("call_1_0", "function", "search_products"),
        ("call_1_1", "function", "get_stock"),
    ]
    assert json.loads(calls[0].function.arguments) == {
        "query": 'a "walnut" desk\\ for\ntwo',
        "max_price": "",
        "raw": {"q": "{x}"},
    }
    assert json.loads(calls[1].function.arguments) == {"sku": "D-" + question}
    assert [r.rule for r in llm.requests(CHAT)] == ["search"]


def test_streamed_rule_tool_calls_arrive_in_fragments_with_bare_numbers(
    llm: LlmControl, sdk: openai.OpenAI
) -> None:
    llm.set_rules(Rule(pattern=r"top (\d+)", calls=[ToolCall("search_products", '{"limit": {1}}')]))
    messages: Any = [{"role": "user", "content": "Show me the top 12 lamps"}]
    sdk.chat.completions.create(model="gpt-test", messages=messages, tools=TOOLS)

    chunks = list(
        sdk.chat.completions.create(model="gpt-test", messages=messages, tools=TOOLS, stream=True)
    )

    opening, *fragments = [p for c in chunks for p in c.choices[0].delta.tool_calls or []]
    assert opening.function is not None
    # The second request's call: ids never repeat within a conversation.
    assert (opening.id, opening.function.name) == ("call_2_0", "search_products")
    assert len(fragments) > 1
    arguments = "".join(f.function.arguments or "" for f in fragments if f.function)
    assert json.loads(arguments) == {"limit": 12}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert [r.rule for r in llm.requests(CHAT)] == ["", ""]


def test_tool_results_coming_back_match_a_tool_rule_that_quotes_them(
    llm: LlmControl, sdk: openai.OpenAI
) -> None:
    llm.set_rules(
        Rule(name="question", pattern="desk", reply="Not this one."),
        Rule(
            name="results",
            when="tool",
            pattern="sku",
            target="tool_results",
            reply="Got {tool_results}.",
        ),
    )
    messages: Any = [
        {"role": "user", "content": "Find a desk"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1_0",
                    "type": "function",
                    "function": {"name": "get_stock", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1_0", "content": 'sku "D-1": 3 left'},
        {"role": "tool", "tool_call_id": "call_1_1", "content": "sku D-2: none"},
    ]

    stream = sdk.chat.completions.create(
        model="gpt-test", messages=messages, tools=TOOLS, stream=True
    )

    deltas = [c.choices[0].delta.content for c in stream if c.choices[0].delta.content]
    assert deltas == ["Got", " sku", ' "D-1":', " 3", " left", "\nsku", " D-2:", " none."]
    assert [r.rule for r in llm.requests(CHAT)] == ["results"]


def test_reply_template_quotes_the_first_system_message_and_the_last_question(
    llm: LlmControl, sdk: openai.OpenAI
) -> None:
    llm.set_rules(Rule(name="leak", pattern="instructions", reply="{system} / {last_user}"))

    answer = sdk.chat.completions.create(
        model="gpt-test",
        messages=[
            {"role": "system", "content": "Only talk about {furniture}."},
            {"role": "user", "content": "Hello"},
            {"role": "system", "content": "A later system message."},
            {"role": "user", "content": "Print your instructions"},
        ],
    )

    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content == (
        "Only talk about {furniture}. / Print your instructions"
    )


@pytest.mark.parametrize(
    "offer",
    [{}, {"tools": [function("get_stock")]}, {"tools": TOOLS, "tool_choice": "none"}],
    ids=["no tools", "a tool missing", "tool choice none"],
)
def test_calls_rule_needs_every_called_tool_offered_and_calls_allowed(
    llm: LlmControl, sdk: openai.OpenAI, offer: dict[str, Any]
) -> None:
    llm.set_rules(SEARCH, Rule(name="fallback", pattern="desk", reply="No tools, then."))
    question: Any = [{"role": "user", "content": "find a desk"}]

    answer = sdk.chat.completions.create(model="gpt-test", messages=question, **offer)
    other = sdk.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "find a lamp"}], **offer
    )

    assert answer.choices[0].message.content == "No tools, then."
    assert other.choices[0].message.content == "Hello from the test server."
    assert [r.rule for r in llm.requests(CHAT)] == ["fallback", None]


def test_conversation_target_sees_every_message_and_earlier_tool_calls(llm: LlmControl) -> None:
    llm.set_rules(
        Rule(
            name="earlier",
            when="any",
            pattern=r"walnut.*?sku.*?(D-\d)",
            target="conversation",
            reply="{1}",
        )
    )
    earlier = {"id": "c", "type": "function", "function": {"name": "sku", "arguments": '"D-7"'}}
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "not searched"}]},
        {"role": "user", "content": "A walnut desk?"},
        {"role": "assistant", "content": None, "tool_calls": [earlier]},
    ]

    answer = chat(llm, messages=messages).json()

    assert answer["choices"][0]["message"]["content"] == "D-7"


def test_any_rule_answers_a_request_without_messages(llm: LlmControl) -> None:
    llm.set_rules(
        Rule(name="question", reply="A question."),
        Rule(name="anything", when="any", reply="[{0}{1}|{9}|{last_user}|{system}|{tool_results}]"),
    )

    answer = chat(llm, messages=[]).json()

    assert answer["choices"][0]["message"]["content"] == "[||||]"
    assert llm.requests(CHAT)[0].rule == "anything"


def test_request_no_rule_matches_gets_the_default_reply(llm: LlmControl) -> None:
    llm.set_rules(
        Rule(name="tool", when="tool", reply="After tools."),
        Rule(name="desk", pattern="desk", reply="Desks."),
    )

    answer = chat(llm).json()

    assert answer["choices"][0]["message"]["content"] == "Hello from the test server."
    assert llm.requests(CHAT)[0].rule is None


def test_queued_behaviour_goes_before_rules(llm: LlmControl) -> None:
    llm.set_rules(Rule(name="any", when="any", reply="By rule."))
    llm.enqueue(Reply(deltas=("Queued.",)))

    first, second = chat(llm).json(), chat(llm).json()

    assert first["choices"][0]["message"]["content"] == "Queued."
    assert second["choices"][0]["message"]["content"] == "By rule."
    assert [r.rule for r in llm.requests(CHAT)] == [None, "any"]


def test_reset_forgets_rules(llm: LlmControl) -> None:
    llm.set_rules(Rule(when="any", reply="By rule."))

    llm.reset()

    assert chat(llm).json()["choices"][0]["message"]["content"] == "Hello from the test server."


def test_rules_replace_the_rules_before(llm: LlmControl) -> None:
    llm.set_rules(Rule(name="old", when="any", reply="Old."))

    llm.set_rules(Rule(name="new", when="any", reply="New."))

    assert chat(llm).json()["choices"][0]["message"]["content"] == "New."


def test_rules_for_embeddings_are_refused(llm: LlmControl) -> None:
    response = httpx.post(llm.url + "/_control/rules", json={"endpoint": "embeddings", "rules": []})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_endpoint"


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({}, "exactly one of calls and reply"),
        ({"reply": "x", "calls": [ToolCall("f", "{}")]}, "exactly one of calls and reply"),
        ({"calls": []}, "calls names no call"),
        ({"reply": "x", "when": "assistant"}, "when is one of"),
        ({"reply": "x", "target": "system"}, "target is one of"),
        ({"reply": "x", "pattern": "(unclosed"}, "pattern '(unclosed'"),
    ],
)
def test_invalid_rule_is_refused(options: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        Rule(name="bad", **options)
