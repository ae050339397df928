"""Streamed replies: server-sent events as the upstream produces text.

Events: ``data: {"delta": "..."}`` per piece of text, then ``event: done`` with
``{conversation_id, usage, model}``; a failure after the stream started is sent as
``event: error`` with a problem body, and the stream ends. When the client leaves, the upstream
stream is closed at once and the partial reply is stored, its tokens counted with tiktoken.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import anyio
from common_libs.errors import ProblemError
from common_libs.request_id import get_request_id
from pydantic import BaseModel

from app.metrics import TIME_TO_FIRST_TOKEN
from app.models.chat_models import StreamDelta, StreamDone, TokenUsage
from app.services import quota_manager
from app.services.chat_manager import Turn, TurnProgress, prepare_turn, store_turn
from app.services.context import ChatServices
from app.services.llm_integration import CompletionStream

__all__ = ["ReplyEvents", "problem_event", "start_stream"]

_logger = logging.getLogger(__name__)


def _event(data: BaseModel | dict[str, Any], *, event: str | None = None) -> bytes:
    body = data.model_dump_json() if isinstance(data, BaseModel) else json.dumps(data)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {body}\n\n".encode()


def _unexpected() -> ProblemError:
    # The stream has started: the status line is sent, so a 500 can only be told as an event.
    return ProblemError("An unexpected error occurred. Quote the request id when reporting it.")


def problem_event(problem: ProblemError) -> bytes:
    """An ``event: error`` carrying the problem body the JSON answer would have had."""
    body: dict[str, Any] = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "request_id": get_request_id(),
        **problem.extra,
    }
    return _event(body, event="error")


async def start_stream(
    *,
    services: ChatServices,
    user_id: str,
    access_token: str,
    message: str,
    conversation_id: uuid.UUID | None,
) -> ReplyEvents:
    """Check, reserve and open the upstream stream; problems so far are ordinary answers."""
    started = time.perf_counter()
    turn = await prepare_turn(
        services=services,
        user_id=user_id,
        access_token=access_token,
        message=message,
        conversation_id=conversation_id,
    )
    progress = TurnProgress(services, turn)
    try:
        stream = await _open(services, turn, progress)
    except BaseException:
        await quota_manager.release_tokens(sessions=services.sessions, reservation=turn.reservation)
        raise
    return ReplyEvents(services, turn, progress, stream, started=started)


async def _open(services: ChatServices, turn: Turn, progress: TurnProgress) -> CompletionStream:
    return await services.llm.open_stream(
        model=turn.model,
        messages=progress.messages,
        max_tokens=services.settings.max_output_tokens,
        tools=progress.offer(),
    )


class ReplyEvents:
    """The events of one streamed reply, as an async iterator that must be closed.

    A round whose model call asks for tools streams any words it says, runs the tools, and
    opens the next round's stream; the answer streams as it comes. Closing it before the end
    (the client left, or the response was never sent) stops the upstream call at once and
    stores what was said so far (with the finished tool exchanges), its tokens counted with
    tiktoken; that holds whether or not iteration had started, which a bare generator cannot
    promise.
    """

    def __init__(
        self,
        services: ChatServices,
        turn: Turn,
        progress: TurnProgress,
        stream: CompletionStream,
        *,
        started: float,
    ) -> None:
        self._services = services
        self._turn = turn
        self._progress = progress
        self._stream = stream
        self._started_at = started
        self._round_text: list[str] = []
        self._settled = False
        self._started = False
        self._generator = self._generate()

    def __aiter__(self) -> ReplyEvents:
        return self

    async def __anext__(self) -> bytes:
        self._started = True
        return await self._generator.__anext__()

    async def aclose(self) -> None:
        """Finish early: close the upstream stream and keep the partial reply."""
        if self._started:
            await self._generator.aclose()
        if not self._settled:
            await self._abandon()

    async def _abandon(self) -> None:
        self._settled = True
        with anyio.CancelScope(shield=True):
            await self._stream.aclose()
            try:
                await self._progress.end_round(None, "".join(self._round_text), ())
                await store_turn(
                    services=self._services,
                    turn=self._turn,
                    progress=self._progress,
                    is_complete=False,
                )
            except Exception:
                _logger.exception("storing a reply cut short by the client failed")

    async def _rounds(self) -> AsyncGenerator[str, None]:
        """The text of every round, as it may reach the client; runs the tool rounds."""
        progress = self._progress
        while True:
            self._round_text = []
            async for delta in self._stream.deltas():
                self._round_text.append(delta)
                if safe := progress.show(delta):
                    yield safe
                if progress.leaked:
                    break
            text, calls = "".join(self._round_text), self._stream.tool_calls
            await self._stream.aclose()
            self._round_text = []
            await progress.end_round(self._stream.usage, text, calls)
            if not progress.wants_tools(calls):
                break
            await progress.run_tools(text, calls)
            await progress.hold_next_call()  # QuotaExceeded: the turn ends with that error
            self._stream = await _open(self._services, self._turn, progress)
        if rest := progress.finish_text():
            yield rest

    async def _generate(self) -> AsyncGenerator[bytes, None]:
        turn = self._turn
        try:
            failure: ProblemError | None = None
            first = True
            try:
                async for text in self._rounds():
                    if first:
                        TIME_TO_FIRST_TOKEN.labels(model=turn.model).observe(
                            time.perf_counter() - self._started_at
                        )
                        first = False
                    yield _event(StreamDelta(delta=text))
            except ProblemError as exc:
                failure = exc
            except Exception:
                _logger.exception("reading the upstream stream failed")
                failure = _unexpected()
            await self._stream.aclose()
            if failure is not None and self._round_text:
                await self._progress.end_round(None, "".join(self._round_text), ())
            self._settled = True  # store_turn settles (or releases) the reservation from here on
            usage: TokenUsage | None = None
            try:
                usage = await store_turn(
                    services=self._services,
                    turn=turn,
                    progress=self._progress,
                    is_complete=failure is None,
                )
            except ProblemError as exc:
                failure = failure or exc
            except Exception:
                _logger.exception("storing a streamed reply failed")
                failure = failure or _unexpected()
            if failure is not None or usage is None:
                yield problem_event(failure or _unexpected())
                return
            done = StreamDone(conversation_id=turn.conversation_id, usage=usage, model=turn.model)
            yield _event(done, event="done")
        finally:
            if not self._settled:
                await self._abandon()
