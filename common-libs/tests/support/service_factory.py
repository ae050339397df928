"""A service built the fleet's way, for the process check (``service_factory:create_app``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import version

from fastapi import FastAPI

from common_libs.service_app import create_service_app


@dataclass(frozen=True)
class Settings:
    log_level: str = "INFO"
    log_json: bool = True


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield


async def dependency_answers() -> None:
    if os.environ.get("SERVICE_FACTORY_DEPENDENCY") != "up":
        raise ConnectionRefusedError("the dependency is down")


def create_app() -> FastAPI:
    return create_service_app(
        name="common-libs",
        version=version("common-libs"),
        summary="A service built the fleet's way.",
        lifespan=lifespan,
        settings=Settings(),
        ready_checks={"dependency": dependency_answers},
    )
