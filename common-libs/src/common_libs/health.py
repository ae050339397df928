"""Operational endpoints every service serves: ``/health``, ``/ready`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.responses import JSONResponse, Response

from common_libs.problem_types import SERVICE_UNAVAILABLE
from common_libs.problems import problem_response

__all__ = ["ReadinessCheck", "create_health_router"]

ReadinessCheck = Callable[[], Awaitable[object]]
"""An async callable that returns when a dependency answers and raises when it does not."""

_logger = logging.getLogger("common_libs.health")


async def _run_check(name: str, check: ReadinessCheck, limit: float) -> str | None:
    try:
        async with asyncio.timeout(limit):
            await check()
    except TimeoutError:
        return f"no answer within {limit:g} s"
    except Exception as exc:
        # The log gets the exception text; the answer names only its class (no addresses, no SQL).
        _logger.warning("readiness check %s failed: %s", name, exc)
        return f"failed ({type(exc).__name__})"
    return None


def create_health_router(
    *,
    service: str,
    version: str,
    checks: Mapping[str, ReadinessCheck],
    check_timeout: float = 2.0,
    registry: CollectorRegistry = REGISTRY,
) -> APIRouter:
    """Build the router for liveness, readiness (running ``checks`` concurrently) and metrics."""
    router = APIRouter(include_in_schema=False)

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": service, "version": version}

    @router.get("/ready")
    async def ready() -> Response:
        names = list(checks)
        failures = await asyncio.gather(
            *(_run_check(name, checks[name], check_timeout) for name in names)
        )
        results = {name: failure or "ok" for name, failure in zip(names, failures, strict=True)}
        failed = [name for name, failure in zip(names, failures, strict=True) if failure]
        if failed:
            return problem_response(
                status=SERVICE_UNAVAILABLE.status,
                title=SERVICE_UNAVAILABLE.title,
                type_=SERVICE_UNAVAILABLE.type,
                detail=f"Not ready: {', '.join(failed)} check failed.",
                headers={"Retry-After": "5"},
                extra={"checks": results},
            )
        return JSONResponse({"status": "ready", "service": service, "checks": results})

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
