"""Routes of the assistant: generate (JSON or streamed), embeddings, token counts, usage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.dependencies import AppSettings, ChatDeps, CurrentPrincipal, DbSession
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
from app.routers.openapi_docs import problems
from app.services import chat_manager, chat_stream, quota_manager, token_manager

router = APIRouter(prefix="/chat", tags=["chat"])

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
    responses={**_STREAM_DOC, **problems(400, 401, 404, 413, 422, 429, 502, 503, 504)},
)
async def generate_response(
    body: GenerateRequest, principal: CurrentPrincipal, services: ChatDeps
) -> GenerateResponse | EventStreamResponse:
    """Answer a message as the shop's assistant, grounded in the catalog."""
    if body.stream:
        events = await chat_stream.start_stream(
            services,
            user_id=principal.subject,
            message=body.message,
            conversation_id=body.conversation_id,
        )
        return EventStreamResponse(events)
    return await chat_manager.generate_response(
        services,
        user_id=principal.subject,
        message=body.message,
        conversation_id=body.conversation_id,
    )


@router.post(
    "/get_embeddings",
    response_model=EmbeddingsResponse,
    responses=problems(400, 401, 413, 422, 429, 502, 503, 504),
)
async def get_embeddings(
    body: EmbeddingsRequest, principal: CurrentPrincipal, services: ChatDeps
) -> EmbeddingsResponse:
    """Embed one text or up to 64 texts with the configured embedding model."""
    return await token_manager.create_embeddings(
        services, user_id=principal.subject, inputs=body.texts()
    )


@router.post(
    "/count_tokens",
    response_model=CountTokensResponse,
    responses=problems(400, 401, 422, 503),
)
async def count_tokens(
    body: CountTokensRequest, principal: CurrentPrincipal, settings: AppSettings
) -> CountTokensResponse:
    """Count tokens exactly as tiktoken does, offline (default model: the chat model)."""
    return await token_manager.count_tokens(settings=settings, text=body.text, model=body.model)


@router.get("/usage", response_model=UsageReport, responses=problems(401, 503))
async def get_usage(
    principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> UsageReport:
    """The caller's tokens today (UTC) against the daily quota."""
    return await quota_manager.usage_report(
        session, user_id=principal.subject, limit=settings.daily_token_quota
    )
