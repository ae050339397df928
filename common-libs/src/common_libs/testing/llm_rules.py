"""How the test server (:mod:`common_libs.testing.llm_server`) answers a chat request by rules.

A rule (typed as :class:`common_libs.testing.llm.Rule`; here the plain dict it is sent as) looks
at the request's messages and, when it matches, becomes one of the server's behaviour dicts: a
``tool_calls`` answer or a ``reply``. It knows no tool of any service: the test names the tools.

Templates take ``{0}``..``{9}`` (the match and its groups; an unmatched group is empty),
``{last_user}``, ``{system}`` and ``{tool_results}``; no other braces are touched, so a JSON
text stays as written. In tool call arguments each value is escaped for a JSON string.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["answer_by_rules"]

_PLACEHOLDER = re.compile(r"\{(\d|last_user|system|tool_results)\}")
# A word with the spaces before it, or the spaces at the end: the pieces join to the text.
_WORD = re.compile(r"\s*\S+|\s+")


def _text(content: Any) -> str:
    return content if isinstance(content, str) else ""


def _conversation(messages: list[dict[str, Any]]) -> str:
    parts = []
    for message in messages:
        if isinstance(message.get("content"), str):
            parts.append(message["content"])
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            parts += [_text(function.get("name")), _text(function.get("arguments"))]
    return "\n".join(parts)


def _tool_results(messages: list[dict[str, Any]]) -> str:
    """The contents of the ``tool`` messages that end the request."""
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, _text(message.get("content")))
    return "\n".join(results)


def _content_of(messages: list[dict[str, Any]], role: str, *, last: bool = False) -> str:
    """The content of the first (or ``last``) message of ``role``."""
    found = [message for message in messages if message.get("role") == role]
    return _text(found[-1 if last else 0].get("content")) if found else ""


def _texts(messages: list[dict[str, Any]]) -> dict[str, str]:
    """What a rule can search and a template can quote."""
    return {
        "last_user": _content_of(messages, "user", last=True),
        "conversation": _conversation(messages),
        "tool_results": _tool_results(messages),
        "system": _content_of(messages, "system"),
    }


def _offers_tools(body: dict[str, Any], calls: list[dict[str, Any]]) -> bool:
    """Whether the request lets the model call every function of ``calls``."""
    if body.get("tool_choice") == "none":
        return False
    offered = {_text((tool.get("function") or {}).get("name")) for tool in body.get("tools") or []}
    return all(call["name"] in offered for call in calls)


def _match(
    rule: dict[str, Any], body: dict[str, Any], texts: dict[str, str]
) -> re.Match[str] | None:
    messages = body.get("messages") or []
    last_role = messages[-1].get("role") if messages else None
    if rule["when"] != "any" and rule["when"] != last_role:
        return None
    if rule["calls"] is not None and not _offers_tools(body, rule["calls"]):
        return None
    # No pattern matches always, as the empty one does: its {0} is empty.
    return re.search(rule["pattern"] or "", texts[rule["target"]], re.IGNORECASE | re.DOTALL)


def _fill(template: str, match: re.Match[str], texts: dict[str, str], *, is_json: bool) -> str:
    def value(placeholder: re.Match[str]) -> str:
        key = placeholder[1]
        if key.isdigit():
            index = int(key)
            text = (match[index] if index <= match.re.groups else None) or ""
        else:
            text = texts[key]
        # Without its quotes, a value sits inside a JSON string, or stands as a bare number.
        return json.dumps(text, ensure_ascii=False)[1:-1] if is_json else text

    return _PLACEHOLDER.sub(value, template)


def answer_by_rules(
    rules: list[dict[str, Any]], body: dict[str, Any], request_number: int
) -> tuple[dict[str, Any], str] | None:
    """The behaviour of the first rule that matches the chat request ``body``, and its name.

    Call ids are ``call_<request_number>_<index>``: unique within a conversation.
    """
    texts = _texts(body.get("messages") or [])
    for rule in rules:
        match = _match(rule, body, texts)
        if match is None:
            continue
        if rule["reply"] is not None:
            text = _fill(rule["reply"], match, texts, is_json=False)
            return {"kind": "reply", "deltas": _WORD.findall(text)}, rule["name"]
        calls = [
            {
                "id": f"call_{request_number}_{index}",
                "name": call["name"],
                "arguments": _fill(call["arguments"], match, texts, is_json=True),
            }
            for index, call in enumerate(rule["calls"])
        ]
        return {"kind": "tool_calls", "calls": calls}, rule["name"]
    return None
