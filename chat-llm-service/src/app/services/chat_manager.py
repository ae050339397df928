"""Chat turns: check the conversation, ground in the catalog's read model, build the prompt, ask,
store."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import chat_repository
from app.db.tables import Message
from app.metrics import ROUNDS, TOKENS
from app.models.chat_models import AssistantMessage, GenerateResponse, TokenUsage
from app.services import quota_manager
from app.services.assistant_tools import TOOL_SPECS, TOOL_SPECS_JSON, ToolCaller, run_tool_calls
from app.services.catalog_read_model import CatalogSearchFailed
from app.services.context import ChatServices
from app.services.errors import ConversationNotFound
from app.services.leak_guard import WITHHELD_REPLY, LeakGuard
from app.services.llm_integration import (
    PromptMessage,
    ReportedUsage,
    ToolCallRequest,
    ToolOffer,
)
from app.services.prompt_builder import (
    Prompt,
    build_prompt,
    grounding_text,
    search_terms,
    system_prompt,
)
from app.services.quota_manager import Reservation
from app.utils.token_counter import (
    ModelEncoding,
    count_constant,
    count_message_tokens,
    count_text_async,
    encoding_for_model_async,
)

__all__ = [
    "Turn",
    "TurnProgress",
    "generate_response",
    "prepare_turn",
    "settle_failed_turn",
    "store_turn",
]

_logger = logging.getLogger(__name__)

# The newest messages considered for the prompt; trimming to the token budget happens after.
HISTORY_MESSAGES = 100
TITLE_CHARS = 80


@dataclass(frozen=True, slots=True)
class Turn:
    """One question on its way to the model, with its prompt and quota reservation (which the
    turn's later model calls resize, see :meth:`TurnProgress.hold_next_call`).

    ``access_token`` is the caller's own, verified: the order tools forward it (never logged)."""

    user_id: str
    access_token: str = field(repr=False)
    conversation_id: uuid.UUID
    is_new: bool
    message: str
    encoding: ModelEncoding
    prompt: Prompt
    reservation: Reservation

    @property
    def model(self) -> str:
        """The chat model the turn is sent to."""
        return self.encoding.model


class TurnProgress:
    """A turn's model calls so far: the messages of the next call, the text for the client
    (through the leak guard), the tool exchanges to store, and the tokens used.

    Each call is a round; when the model asks for tools (and rounds are left) they run, their
    results join the messages, and the model is called again. The last round allowed offers the
    tools with ``tool_choice: none``, so the model answers in words.
    """

    def __init__(self, services: ChatServices, turn: Turn) -> None:
        self._services = services
        self._turn = turn
        self.messages = list(turn.prompt.messages)
        self.exchanges: list[PromptMessage] = []
        self.rounds = 0
        self._parts: list[str] = []
        self._guard = LeakGuard(services.canary)
        self._size = turn.prompt.prompt_tokens  # the next call's prompt tokens
        self._prompt_tokens = 0
        self._completion_tokens = 0
        self.is_estimated = False

    @property
    def leaked(self) -> bool:
        """Whether the model repeated the system prompt's canary (the reply was cut there)."""
        return self._guard.leaked

    def offer(self) -> ToolOffer | None:
        """The tools for the next call (None when the service offers none)."""
        most = self._services.settings.max_tool_rounds
        if most == 0:
            return None
        return ToolOffer(TOOL_SPECS, "none" if self.rounds >= most else "auto")

    def show(self, piece: str) -> str:
        """The part of a piece of the model's text that may reach the client now."""
        safe = self._guard.feed(piece)
        self._parts.append(safe)
        return safe

    def finish_text(self) -> str:
        """The text still held back at the end of the reply (and the refusal after a leak)."""
        rest = self._guard.finish() + (WITHHELD_REPLY if self.leaked else "")
        self._parts.append(rest)
        return rest

    @property
    def answer(self) -> str:
        """The reply as the client got it so far."""
        return "".join(self._parts)

    async def end_round(
        self, reported: ReportedUsage | None, text: str, calls: Sequence[ToolCallRequest]
    ) -> None:
        """Count a call's tokens: as the upstream reported them, else with tiktoken."""
        model = self._turn.model
        if reported is not None:
            prompt, completion = reported.prompt_tokens, reported.completion_tokens
        else:
            written = text + "".join(call.name + call.arguments for call in calls)
            prompt = self._size
            completion = await count_text_async(self._turn.encoding.encoding, written)
            self.is_estimated = True
        self._prompt_tokens += prompt
        self._completion_tokens += completion
        TOKENS.labels(model=model, kind="prompt").inc(prompt)
        TOKENS.labels(model=model, kind="completion").inc(completion)

    def wants_tools(self, calls: Sequence[ToolCallRequest]) -> bool:
        """Whether to run the calls the model asked for (rounds left, no leak)."""
        most = self._services.settings.max_tool_rounds
        return bool(calls) and self.rounds < most and not self.leaked

    async def run_tools(self, text: str, calls: Sequence[ToolCallRequest]) -> None:
        """Run a round's calls and add the exchange to the next call's messages."""
        settings = self._services.settings
        encoding = self._turn.encoding.encoding
        asked = PromptMessage("assistant", text, tool_calls=tuple(calls))
        written = "".join(call.name + call.arguments for call in calls) + text
        asked_tokens = count_message_tokens(
            encoding, "assistant", await count_text_async(encoding, written)
        )
        budget = settings.context_window_tokens - settings.max_output_tokens
        caller = ToolCaller(self._services, self._turn.user_id, self._turn.access_token)
        results = await run_tool_calls(
            caller,
            calls,
            encoding=encoding,
            room_tokens=budget - self._size - asked_tokens,
            result_max_tokens=settings.tool_result_max_tokens,
        )
        self.messages += [asked, *results.messages]
        # Stored without the round's words: they are part of the answer already.
        self.exchanges += [PromptMessage("assistant", "", tool_calls=asked.tool_calls)]
        self.exchanges += results.messages
        self._size += asked_tokens + results.tokens
        self.rounds += 1

    async def hold_next_call(self) -> None:
        """Before a tool round's model call: hold its size (its prompt, counted with tiktoken,
        plus the reply allowance) on top of what the turn used so far, or raise QuotaExceeded."""
        settings = self._services.settings
        await quota_manager.resize_reservation(
            engine=self._services.engine,
            reservation=self._turn.reservation,
            used=self._prompt_tokens + self._completion_tokens,
            tokens=self._size + settings.max_output_tokens,
            limit=settings.daily_token_quota,
        )

    def usage(self) -> TokenUsage:
        """The turn's tokens, every round included."""
        return TokenUsage(
            prompt_tokens=self._prompt_tokens,
            completion_tokens=self._completion_tokens,
            total_tokens=self._prompt_tokens + self._completion_tokens,
        )


async def _load_history(
    services: ChatServices, *, user_id: str, conversation_id: uuid.UUID
) -> list[PromptMessage]:
    async with services.sessions() as session:
        conversation = await chat_repository.get_conversation(
            session, conversation_id=conversation_id, owner_id=user_id
        )
        if conversation is None:
            raise ConversationNotFound
        rows = await chat_repository.recent_messages(
            session, conversation_id=conversation_id, limit=HISTORY_MESSAGES
        )
    return [_history_message(row) for row in rows]


def _history_message(row: Message) -> PromptMessage:
    if row.role == "tool":
        return PromptMessage("tool", row.content, tool_call_id=row.tool_call_id)
    if row.role == "assistant":
        calls = tuple(ToolCallRequest(**call) for call in row.tool_calls or ())
        return PromptMessage("assistant", row.content, tool_calls=calls)
    return PromptMessage("user", row.content)


def _tools_tokens(services: ChatServices, encoding: ModelEncoding) -> int:
    """What the tools' specs add to every call (none without tools)."""
    if services.settings.max_tool_rounds == 0:
        return 0
    return count_constant(encoding.encoding, TOOL_SPECS_JSON)


async def _grounding(services: ChatServices, message: str) -> str | None:
    limit = services.settings.grounding_products
    if limit == 0:
        return None
    try:
        products = await services.catalog.search_products(terms=search_terms(message), limit=limit)
    except CatalogSearchFailed as exc:
        _logger.warning("catalog read model search failed; answering without grounding: %s", exc)
        return grounding_text(None)
    return grounding_text(products)


async def prepare_turn(
    *,
    services: ChatServices,
    user_id: str,
    access_token: str,
    message: str,
    conversation_id: uuid.UUID | None,
) -> Turn:
    """Everything before the upstream call; raises 503, 404, 413 or 429 problems."""
    settings = services.settings
    services.llm.require()
    history: list[PromptMessage] = []
    if conversation_id is not None:
        history = await _load_history(services, user_id=user_id, conversation_id=conversation_id)
    encoding = await encoding_for_model_async(
        settings.chat_model, fallback=settings.fallback_encoding
    )
    grounding = await _grounding(services, message)
    prompt = await build_prompt(
        encoding=encoding.encoding,
        system=system_prompt(services.canary),
        tools_tokens=_tools_tokens(services, encoding),
        message=message,
        history=history,
        grounding=grounding,
        context_window=settings.context_window_tokens,
        max_output_tokens=settings.max_output_tokens,
    )
    # The first model call's own size: its prompt as tiktoken counts it, plus the most the reply
    # may take (the call's max_tokens). The tool rounds hold theirs before their calls.
    reservation = await quota_manager.reserve_tokens(
        engine=services.engine,
        sessions=services.sessions,
        user_id=user_id,
        tokens=prompt.prompt_tokens + settings.max_output_tokens,
        limit=settings.daily_token_quota,
    )  # QuotaExceeded (429), after any 413
    return Turn(
        user_id=user_id,
        access_token=access_token,
        conversation_id=conversation_id or uuid.uuid4(),
        is_new=conversation_id is None,
        message=message,
        encoding=encoding,
        prompt=prompt,
        reservation=reservation,
    )


async def _append_turn(
    session: AsyncSession, turn: Turn, progress: TurnProgress, *, is_complete: bool
) -> bool:
    """Add the question, the tool exchanges and the answer to the conversation; False when it
    is gone."""
    if turn.is_new:
        await chat_repository.insert_conversation(
            session,
            conversation_id=turn.conversation_id,
            owner_id=turn.user_id,
            title=" ".join(turn.message.split())[:TITLE_CHARS] or "Conversation",
        )
    elif not await chat_repository.lock_conversation(
        session, conversation_id=turn.conversation_id, owner_id=turn.user_id
    ):
        return False
    await chat_repository.insert_message(
        session, conversation_id=turn.conversation_id, role="user", content=turn.message
    )
    for exchanged in progress.exchanges:
        await chat_repository.insert_message(
            session,
            conversation_id=turn.conversation_id,
            role=exchanged.role,
            content=exchanged.content,
            tool_calls=[asdict(call) for call in exchanged.tool_calls] or None,
            tool_call_id=exchanged.tool_call_id,
        )
    answer = progress.answer
    if answer or is_complete:
        await chat_repository.insert_message(
            session,
            conversation_id=turn.conversation_id,
            role="assistant",
            content=answer,
            is_complete=is_complete,
        )
    return True


async def store_turn(
    *, services: ChatServices, turn: Turn, progress: TurnProgress, is_complete: bool
) -> TokenUsage:
    """Store the question, the tool exchanges and the (possibly partial) answer, and account
    for the tokens of every round."""
    usage = progress.usage()
    ROUNDS.observe(progress.rounds)
    # Shielded: a client that leaves mid-write must not leave half a turn behind.
    with anyio.CancelScope(shield=True):
        try:
            async with services.sessions.begin() as session:
                present = await _append_turn(session, turn, progress, is_complete=is_complete)
                await quota_manager.record_usage(
                    session=session,
                    reservation=turn.reservation,
                    kind="chat",
                    model=turn.model,
                    conversation_id=turn.conversation_id if present else None,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    is_estimated=progress.is_estimated,
                )
        except Exception:
            await quota_manager.release_tokens(
                sessions=services.sessions, reservation=turn.reservation
            )
            raise
    if not present:
        raise ConversationNotFound("The conversation was deleted while the reply was written.")
    return usage


async def settle_failed_turn(*, services: ChatServices, turn: Turn, progress: TurnProgress) -> None:
    """After a failed model call (or a refused tool round): count what the turn's earlier calls
    used and give the rest of its hold back; never raises (it runs during cleanup)."""
    usage = progress.usage()
    if usage.total_tokens == 0:
        await quota_manager.release_tokens(sessions=services.sessions, reservation=turn.reservation)
        return
    with anyio.CancelScope(shield=True):
        try:
            async with services.sessions.begin() as session:
                await quota_manager.record_usage(
                    session=session,
                    reservation=turn.reservation,
                    kind="chat",
                    model=turn.model,
                    conversation_id=None,  # the turn is not stored
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    is_estimated=progress.is_estimated,
                )
        except Exception:
            _logger.exception("recording the usage of a failed turn failed")
            await quota_manager.release_tokens(
                sessions=services.sessions, reservation=turn.reservation
            )


async def generate_response(
    *,
    services: ChatServices,
    user_id: str,
    access_token: str,
    message: str,
    conversation_id: uuid.UUID | None,
) -> GenerateResponse:
    """Answer a message in one piece (after any tool rounds) and store the turn."""
    turn = await prepare_turn(
        services=services,
        user_id=user_id,
        access_token=access_token,
        message=message,
        conversation_id=conversation_id,
    )
    progress = TurnProgress(services, turn)
    try:
        while True:
            completion = await services.llm.complete(
                model=turn.model,
                messages=progress.messages,
                max_tokens=services.settings.max_output_tokens,
                tools=progress.offer(),
            )
            progress.show(completion.content)
            await progress.end_round(completion.usage, completion.content, completion.tool_calls)
            if not progress.wants_tools(completion.tool_calls):
                break
            await progress.run_tools(completion.content, completion.tool_calls)
            await progress.hold_next_call()
        progress.finish_text()
    except BaseException:
        await settle_failed_turn(services=services, turn=turn, progress=progress)
        raise
    usage = await store_turn(services=services, turn=turn, progress=progress, is_complete=True)
    return GenerateResponse(
        conversation_id=turn.conversation_id,
        message=AssistantMessage(content=progress.answer),
        usage=usage,
        model=turn.model,
    )
