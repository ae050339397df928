"""Start and script the OpenAI-compatible test server (:mod:`common_libs.testing.llm_server`).

``LlmServer`` runs it as a uvicorn process of its own on a free port of 127.0.0.1; give a
service ``base_url`` (and ``api_key``) as its OpenAI base URL. ``enqueue`` scripts the next
answers with the behaviours below; ``set_rules`` answers the chat requests left over by rules
over their conversation; ``requests`` and ``streams`` read what the server recorded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Self, get_args

import httpx

from common_libs.testing.llm_server import DEFAULT_DELTAS
from common_libs.testing.processes import StartStop, UvicornServer

__all__ = [
    "Failure",
    "Hang",
    "LlmControl",
    "LlmServer",
    "Received",
    "Reply",
    "Rule",
    "StreamRecord",
    "ToolCall",
    "ToolCalls",
]

Endpoint = Literal["chat", "embeddings"]
RuleWhen = Literal["user", "tool", "any"]
RuleTarget = Literal["last_user", "conversation", "tool_results"]


@dataclass(frozen=True)
class _Streamed:
    """How a streamed answer is paced: a pause before each chunk, a gate, a dropped connection."""

    delay_seconds: float = 0.0
    # Wait before piece number ``gate_after`` until ``release(gate)`` (or the client leaves).
    gate: str | None = None
    gate_after: int | None = None
    # Drop the connection instead of sending piece number ``abort_after``.
    abort_after: int | None = None
    usage: dict[str, int] | None = None


@dataclass(frozen=True)
class Reply(_Streamed):
    """Answer with text, streamed as ``deltas`` (``usage``: prompt and completion tokens)."""

    kind: Literal["reply"] = field(default="reply", init=False)
    deltas: Sequence[str] = DEFAULT_DELTAS

    @property
    def content(self) -> str:
        """The whole text of the answer."""
        return "".join(self.deltas)


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asks for; ``arguments`` is a JSON text, as the API sends it."""

    name: str
    arguments: str
    id: str = "call_test_0"


@dataclass(frozen=True)
class ToolCalls(_Streamed):
    """Answer with ``tool_calls`` (finish reason ``tool_calls``), streamed in fragments."""

    kind: Literal["tool_calls"] = field(default="tool_calls", init=False)
    calls: Sequence[ToolCall] = ()


@dataclass(frozen=True)
class Failure:
    """Answer ``status`` with these headers and body (an OpenAI error object by default)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    kind: Literal["status"] = field(default="status", init=False)


@dataclass(frozen=True)
class Hang:
    """Never answer; wait for the client to give up."""

    kind: Literal["hang"] = field(default="hang", init=False)


Behaviour = Reply | ToolCalls | Failure | Hang


@dataclass(frozen=True)
class Rule:
    """Answer a chat request that nothing queued answers, when it matches.

    It matches when the request's last message has the role ``when`` (``"user"``: a new
    question; ``"tool"``: tool results just came back; ``"any"``) and ``pattern`` (a regex,
    case-insensitive, ``.`` matching newlines; None matches always) is found in ``target``: the
    last user message, the ``conversation`` (every message's text and every tool call's name and
    arguments, one a line) or the ``tool_results`` that end the request. A rule with ``calls``
    matches only when the request offers every function it calls and ``tool_choice`` is not
    ``"none"``; its call ids are ``call_<request number>_<index>`` (their ``id`` is ignored).

    ``reply`` (streamed a word at a time) and each call's ``arguments`` are templates:
    ``{0}``..``{9}`` (the match and its groups), ``{last_user}``, ``{system}`` (the first system
    message) and ``{tool_results}``; in arguments, values are escaped for a JSON string.
    """

    name: str = ""
    when: RuleWhen = "user"
    pattern: str | None = None
    target: RuleTarget = "last_user"
    calls: Sequence[ToolCall] | None = None
    reply: str | None = None

    def __post_init__(self) -> None:
        if (self.calls is None) == (self.reply is None):
            raise ValueError(f"rule {self.name!r}: set exactly one of calls and reply")
        if self.calls is not None and not self.calls:
            raise ValueError(f"rule {self.name!r}: calls names no call")
        for option, allowed in (("when", RuleWhen), ("target", RuleTarget)):
            if getattr(self, option) not in get_args(allowed):
                raise ValueError(
                    f"rule {self.name!r}: {option} is one of {get_args(allowed)}, "
                    f"not {getattr(self, option)!r}"
                )
        try:
            re.compile(self.pattern or "")
        except re.error as error:
            raise ValueError(f"rule {self.name!r}: pattern {self.pattern!r}: {error}") from error


@dataclass(frozen=True)
class Received:
    """One request as the server got it (header names in lower case).

    ``rule``: the name of the rule that answered a chat request (None: a queued behaviour or
    the default reply did).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    rule: str | None = None

    def message_texts(self) -> list[str]:
        """The ``content`` of every message of a chat completion request."""
        return [str(message.get("content", "")) for message in self.body.get("messages", [])]


@dataclass(frozen=True)
class StreamRecord:
    """One streamed completion: pieces sent, how it ended, the server's own time to first token."""

    request_id: str | None
    sent: int
    finished: bool
    closed_by_client: bool
    first_token_seconds: float | None


class LlmControl:
    """The control calls of a running test server at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (what ``OPENAI_BASE_URL`` is set to)."""
        return self.url + "/v1"

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        response = httpx.request(method, self.url + path, json=payload, timeout=10)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Forget scripts, rules, gates and recordings."""
        self._call("POST", "/_control/reset")

    def enqueue(self, *behaviours: Behaviour, endpoint: Endpoint = "chat") -> None:
        """The next requests to ``endpoint`` answer with ``behaviours``, in order."""
        script = {"endpoint": endpoint, "behaviours": [asdict(b) for b in behaviours]}
        self._call("POST", "/_control/enqueue", script)

    def set_rules(self, *rules: Rule) -> None:
        """Answer the chat requests that nothing queued answers by ``rules`` (the first match)."""
        self._call(
            "POST", "/_control/rules", {"endpoint": "chat", "rules": [asdict(r) for r in rules]}
        )

    def release(self, gate: str) -> None:
        """Let the streams waiting at ``gate`` (and any that reach it later) go on."""
        self._call("POST", f"/_control/release/{gate}")

    def requests(self, path: str | None = None) -> list[Received]:
        """Every request so far (to ``path``, e.g. ``/v1/chat/completions``, when given)."""
        recorded = self._call("GET", "/_control/state")["requests"]
        return [Received(**r) for r in recorded if path is None or r["path"] == path]

    def chat_requests(self) -> list[dict[str, Any]]:
        """The bodies of the chat completion requests so far."""
        return [r.body for r in self.requests("/v1/chat/completions")]

    def streams(self) -> list[StreamRecord]:
        """Every streamed completion so far, in the order they started."""
        return [StreamRecord(**s) for s in self._call("GET", "/_control/state")["streams"]]


class LlmServer(LlmControl, StartStop):
    """The test server as a uvicorn process of its own; with ``api_key``, others get 401."""

    def __init__(self, *, log_path: Path, api_key: str | None = None) -> None:
        env = {"LLM_SERVER_API_KEY": api_key or ""}
        # asyncio sets TCP_NODELAY on each connection, so every chunk leaves at once.
        self.process = UvicornServer(
            "common_libs.testing.llm_server:app",
            log_path=log_path,
            env=env,
            extra_args=["--loop", "asyncio", "--no-access-log"],
        )
        super().__init__(self.process.url)
        self.api_key = api_key

    def start(self) -> Self:
        """Start the process and wait until it answers."""
        self.process.start()
        return self

    def stop(self) -> None:
        """Stop the process."""
        self.process.stop()
