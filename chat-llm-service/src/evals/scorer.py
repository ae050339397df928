"""Run the evaluation cases against a running chat service and score each turn.

A case is one question of one customer, asked with ``POST /chat/generate_response`` (streamed
or not) and that customer's bearer token. What the model did during the turn, its tool calls and
their results, is not visible from the API (a real model's calls least of all), so it is read
from the chat's own database: the ``messages`` rows of the turn's new conversation (assistant
rows' ``tool_calls`` ``[{id, name, arguments}]``, ``tool`` rows' ``content``).

A case passes when every expected call was made (same name; the expected arguments a subset of
the call's, strings compared case-insensitively and numbers numerically; no expected call means
no call at all), every ``must_contain`` text is in the answer or the tool results
(case-insensitively), and no ``must_not_contain`` text is in either.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.tables import Message
from evals.seed import fill

__all__ = [
    "CASES_PATH",
    "Case",
    "CaseResult",
    "ExpectedCall",
    "ToolUse",
    "TurnRecord",
    "accuracy_by_category",
    "load_cases",
    "report",
    "run_cases",
    "score",
]

CASES_PATH = Path(__file__).with_name("cases.json")

Authorize = Callable[[str], Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class ExpectedCall:
    """A tool call the turn must make: its name, and arguments it must have (a subset)."""

    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Case:
    """One question of one customer, and what the turn must (not) do and say."""

    id: str
    category: str
    user: str
    question: str
    stream: bool
    expect_tools: tuple[ExpectedCall, ...]
    must_contain: tuple[str, ...]
    must_not_contain: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ToolUse:
    """A call the model made (arguments as parsed; None when they were not a JSON object)."""

    name: str
    arguments: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """What a turn did: the answer, the calls the model made and their results, in order."""

    answer: str
    calls: tuple[ToolUse, ...]
    results: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CaseResult:
    """A case's score: passed, or the reasons it did not."""

    case: Case
    reasons: tuple[str, ...]
    turn: TurnRecord | None

    @property
    def passed(self) -> bool:
        """Whether the turn did everything the case asks."""
        return not self.reasons


def _filled(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return fill(value, dict(values))
    if isinstance(value, list):
        return [_filled(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _filled(item, values) for key, item in value.items()}
    return value


def load_cases(placeholders: Mapping[str, str], path: Path = CASES_PATH) -> list[Case]:
    """The cases of ``path``, their placeholders filled; ids must be unique."""
    cases = []
    for raw in json.loads(path.read_text(encoding="utf-8")):
        try:
            data = _filled(raw, placeholders)
        except KeyError as exc:
            raise ValueError(f"case {raw.get('id')!r}: unknown placeholder {exc}") from exc
        cases.append(
            Case(
                id=data["id"],
                category=data["category"],
                user=data["user"],
                question=data["question"],
                stream=bool(data.get("stream", False)),
                expect_tools=tuple(
                    ExpectedCall(call["name"], call.get("arguments", {}))
                    for call in data["expect_tools"]
                ),
                must_contain=tuple(data.get("must_contain", ())),
                must_not_contain=tuple(data.get("must_not_contain", ())),
            )
        )
    ids = [case.id for case in cases]
    if len(ids) != len(set(ids)):
        raise ValueError("case ids must be unique")
    return cases


def _same_value(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float):
        try:
            return float(actual) == float(expected)
        except (TypeError, ValueError):
            return False
    if isinstance(expected, str):
        return isinstance(actual, str) and actual.strip().casefold() == expected.casefold()
    return bool(expected == actual)


def _matches(expected: ExpectedCall, call: ToolUse) -> bool:
    if call.name != expected.name:
        return False
    arguments = call.arguments if call.arguments is not None else {}
    return all(
        key in arguments and _same_value(value, arguments[key])
        for key, value in expected.arguments.items()
    )


def _shown(call: ToolUse | ExpectedCall) -> str:
    arguments = "?" if call.arguments is None else json.dumps(call.arguments, sort_keys=True)
    return f"{call.name}({arguments})"


def score(case: Case, turn: TurnRecord) -> CaseResult:
    """Score one turn against its case."""
    reasons = []
    if not case.expect_tools and turn.calls:
        reasons.append(f"no tool expected, called {', '.join(map(_shown, turn.calls))}")
    for expected in case.expect_tools:
        if not any(_matches(expected, call) for call in turn.calls):
            made = ", ".join(map(_shown, turn.calls)) or "nothing"
            reasons.append(f"expected {_shown(expected)}, called {made}")
    answer, results = turn.answer.casefold(), "\n".join(turn.results).casefold()
    for fact in case.must_contain:
        if fact.casefold() not in answer and fact.casefold() not in results:
            reasons.append(f"missing {fact!r}")
    for fact in case.must_not_contain:
        where = [
            name
            for name, text in (("answer", answer), ("tool results", results))
            if fact.casefold() in text
        ]
        if where:
            reasons.append(f"{fact!r} in the {' and the '.join(where)}")
    return CaseResult(case=case, reasons=tuple(reasons), turn=turn)


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return f"HTTP {response.status_code}: {body.get('title', '')} {body.get('detail', '')}".strip()


def _streamed(text: str) -> tuple[str, str]:
    """The answer and conversation id of a ``text/event-stream`` body (ValueError on error)."""
    deltas, conversation_id = [], None
    for block in text.split("\n\n"):
        lines = block.splitlines()
        event = next((line[7:] for line in lines if line.startswith("event: ")), "message")
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        if not data:
            continue
        if event == "message":
            deltas.append(json.loads(data)["delta"])
        elif event == "done":
            conversation_id = json.loads(data)["conversation_id"]
        elif event == "error":
            raise ValueError(f"stream error: {data}")
    if conversation_id is None:
        raise ValueError("the stream ended without its done event")
    return "".join(deltas), conversation_id


async def _ask(http: httpx.AsyncClient, case: Case, headers: Mapping[str, str]) -> tuple[str, str]:
    """The answer and conversation id of one question (ValueError when there is none)."""
    body = {"message": case.question, "stream": case.stream}
    response = await http.post("/chat/generate_response", json=body, headers=dict(headers))
    if response.status_code != 200:
        raise ValueError(_problem(response))
    if case.stream:
        return _streamed(response.text)
    answer = response.json()
    return answer["message"]["content"], answer["conversation_id"]


def _tool_use(call: Mapping[str, Any]) -> ToolUse:
    try:
        arguments = json.loads(call.get("arguments") or "{}")
    except ValueError:
        arguments = None
    return ToolUse(str(call.get("name")), arguments if isinstance(arguments, dict) else None)


async def _tool_exchanges(
    engine: AsyncEngine, conversation_id: str
) -> tuple[tuple[ToolUse, ...], tuple[str, ...]]:
    """The calls and results stored with a conversation, in order."""
    statement = (
        select(Message.role, Message.content, Message.tool_calls)
        .where(Message.conversation_id == uuid.UUID(conversation_id))
        .order_by(Message.position)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    calls = tuple(_tool_use(call) for row in rows for call in row.tool_calls or ())
    results = tuple(row.content for row in rows if row.role == "tool")
    return calls, results


async def run_cases(
    cases: Sequence[Case],
    *,
    service_url: str,
    database_url: str,
    authorize: Authorize,
    concurrency: int = 4,
    timeout_seconds: float = 30.0,
) -> list[CaseResult]:
    """Ask every case's question (``concurrency`` at a time), each as its customer (``authorize``
    gives a customer's request headers), and score the turns; results in the cases' order."""
    gate = asyncio.Semaphore(concurrency)
    engine = create_async_engine(database_url, pool_size=concurrency)

    async def run(http: httpx.AsyncClient, case: Case) -> CaseResult:
        async with gate:
            try:
                answer, conversation_id = await _ask(http, case, authorize(case.user))
            except (ValueError, httpx.HTTPError) as exc:
                reason = str(exc) or type(exc).__name__
                return CaseResult(case=case, reasons=(f"no answer: {reason}",), turn=None)
            calls, results = await _tool_exchanges(engine, conversation_id)
        return score(case, TurnRecord(answer=answer, calls=calls, results=results))

    try:
        async with httpx.AsyncClient(base_url=service_url, timeout=timeout_seconds) as http:
            return list(await asyncio.gather(*(run(http, case) for case in cases)))
    finally:
        await engine.dispose()


def _tally(results: Sequence[CaseResult]) -> dict[str, tuple[int, int]]:
    """(passed, cases) per category, in the order categories first appear."""
    tally: dict[str, tuple[int, int]] = {}
    for result in results:
        passed, total = tally.get(result.case.category, (0, 0))
        tally[result.case.category] = (passed + result.passed, total + 1)
    return tally


def accuracy_by_category(results: Sequence[CaseResult]) -> dict[str, float]:
    """The share of passed cases per category."""
    return {category: passed / total for category, (passed, total) in _tally(results).items()}


def report(results: Sequence[CaseResult], *, title: str = "Evaluation") -> str:
    """A table of accuracy per category and overall, then the failed cases and why."""
    rows = [*_tally(results).items()]
    rows.append(("overall", (sum(result.passed for result in results), len(results))))
    width = max(len(name) for name, _ in rows)
    lines = [title, f"{'category':<{width}}  cases  passed  accuracy"]
    for name, (passed, total) in rows:
        share = 100 * passed / total if total else 0.0
        lines.append(f"{name:<{width}}  {total:>5}  {passed:>6}  {share:>7.1f}%")
    failed = [result for result in results if not result.passed]
    lines.append("failed cases:" if failed else "failed cases: none")
    lines += [
        f"  {result.case.id} ({result.case.category}): {'; '.join(result.reasons)}"
        for result in failed
    ]
    return "\n".join(lines)
