"""Routes of the assistant: generate (JSON or streamed), embeddings, token counts, usage."""

from __future__ import annotations

from typing import Any

from common_libs.problem_types import MALFORMED_REQUEST, VALIDATION_FAILED
from common_libs.problems import ProblemSpec, problem_responses
from fastapi import APIRouter

from app.dependencies import (
    CURRENT_PRINCIPAL_PROBLEMS,
    AccessToken,
    AppSettings,
    ChatDeps,
    CurrentPrincipal,
    DbSession,
)
from app.models.chat_models import (
    CountTokensRequest,
    CountTokensResponse,
    EmbeddingsRequest,
    EmbeddingsResponse,
    GenerateRequest,
    GenerateResponse,
    UsageReport,
)
from app.routers.event_stream import EventStreamResponse
from app.services import chat_manager, chat_stream, quota_manager, token_manager
from app.services.errors import (
    ConversationNotFound,
    EmbeddingInputTooLarge,
    LlmNotConfigured,
    MessageTooLarge,
    QuotaExceeded,
    UpstreamContextExceeded,
    UpstreamFailed,
    UpstreamRateLimited,
    UpstreamTimeout,
)

router = APIRouter(prefix="/chat", tags=["chat"])

_PROBLEMS = {
    401: "Missing, invalid or expired access token (`WWW-Authenticate: Bearer`, with "
    '`error="invalid_token"` and an `error_description` when a token was sent).',
    404: "No such conversation (or it belongs to someone else).",
    413: "The message (or an embedding input) does not fit the model.",
    429: "The daily token quota is used up, or the language model API rate-limits us.",
    502: "The language model API failed or cannot be reached.",
    503: "No language model API is configured (the detail says how), or the token issuer's "
    "keys or the database are unavailable (`Retry-After`).",
    504: "The language model API did not answer within the configured timeout.",
}

# What every route here may answer: an unreadable or invalid body, and what the access token
# check answers (401, or 503 while user-service's keys are out of reach).
_REQUEST_PROBLEMS: tuple[ProblemSpec, ...] = (
    MALFORMED_REQUEST,
    VALIDATION_FAILED,
    *CURRENT_PRINCIPAL_PROBLEMS,
)
# A call to the language model, within the caller's quota.
_MODEL_PROBLEMS: tuple[ProblemSpec, ...] = (
    QuotaExceeded,
    UpstreamRateLimited,
    UpstreamContextExceeded,
    UpstreamFailed,
    UpstreamTimeout,
    LlmNotConfigured,
)

_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The reply; with `stream: true` a `text/event-stream` of "
        '`data: {"delta": "..."}` events, then `event: done` with '
        "`{conversation_id, usage, model}` (or `event: error` with a problem body).",
        "content": {
            "text/event-stream": {
                # One server-sent event (schema per event, as OpenAPI describes event streams).
                "schema": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "event": {"type": "string", "enum": ["message", "done", "error"]},
                        "data": {"type": "string", "contentMediaType": "application/json"},
                    },
                }
            }
        },
    }
}


@router.post(
    "/generate_response",
    response_model=GenerateResponse,
    responses={
        **_STREAM_DOC,
        **problem_responses(
            *_REQUEST_PROBLEMS,
            *_MODEL_PROBLEMS,
            ConversationNotFound,
            MessageTooLarge,
            descriptions=_PROBLEMS,
        ),
    },
)
async def generate_response(
    body: GenerateRequest, principal: CurrentPrincipal, token: AccessToken, services: ChatDeps
) -> GenerateResponse | EventStreamResponse:
    """Answer a message as the shop's assistant, grounded in the catalog, using its tools (the
    products, and the caller's own orders read with the caller's token)."""
    if body.stream:
        events = await chat_stream.start_stream(
            services=services,
            user_id=principal.subject,
            access_token=token,
            message=body.message,
            conversation_id=body.conversation_id,
        )
        return EventStreamResponse(events)
    return await chat_manager.generate_response(
        services=services,
        user_id=principal.subject,
        access_token=token,
        message=body.message,
        conversation_id=body.conversation_id,
    )


@router.post(
    "/get_embeddings",
    response_model=EmbeddingsResponse,
    responses=problem_responses(
        *_REQUEST_PROBLEMS, *_MODEL_PROBLEMS, EmbeddingInputTooLarge, descriptions=_PROBLEMS
    ),
)
async def get_embeddings(
    body: EmbeddingsRequest, principal: CurrentPrincipal, services: ChatDeps
) -> EmbeddingsResponse:
    """Embed one text or up to 64 texts with the configured embedding model."""
    return await token_manager.create_embeddings(
        services=services, user_id=principal.subject, inputs=body.texts()
    )


@router.post(
    "/count_tokens",
    response_model=CountTokensResponse,
    responses=problem_responses(
        *_REQUEST_PROBLEMS,
        descriptions={**_PROBLEMS, 503: "The token issuer's keys cannot be fetched right now."},
    ),
)
async def count_tokens(
    body: CountTokensRequest, principal: CurrentPrincipal, settings: AppSettings
) -> CountTokensResponse:
    """Count tokens exactly as tiktoken does, offline (default model: the chat model)."""
    return await token_manager.count_tokens(settings=settings, text=body.text, model=body.model)


@router.get(
    "/usage",
    response_model=UsageReport,
    responses=problem_responses(
        *CURRENT_PRINCIPAL_PROBLEMS,
        descriptions={**_PROBLEMS, 503: "The token issuer's keys or the database are unavailable."},
    ),
)
async def get_usage(
    principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> UsageReport:
    """The caller's tokens today (UTC) against the daily quota."""
    return await quota_manager.usage_report(
        session=session, user_id=principal.subject, limit=settings.daily_token_quota
    )
