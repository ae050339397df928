"""Fixtures shared by the whole suite."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from support.tokens import SigningKey, ed25519_key, rsa_key
from support.upstream_app import upstream_server

from common_libs import __version__
from common_libs.logging_config import RequestContextFilter
from common_libs.telemetry import configure_tracing
from common_libs.testing.otlp import OtlpReceiver

# The plugin is loaded here rather than through its ``pytest11`` entry point (disabled in
# pyproject.toml for this suite only): entry points load before pytest-cov starts measuring.
pytest_plugins = ["pytester", "common_libs.testing.plugin"]


@pytest.fixture(scope="session")
def ed25519_signing_key() -> SigningKey:
    return ed25519_key("ed-1")


@pytest.fixture(scope="session")
def rsa_signing_key() -> SigningKey:
    return rsa_key("rsa-1")


@pytest.fixture
def registry() -> CollectorRegistry:
    """A private Prometheus registry, so that tests never collide on the global one."""
    return CollectorRegistry()


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of one upstream app process shared by the session."""
    with upstream_server(tmp_path_factory.mktemp("upstream")) as server:
        yield server.url


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    """One OTLP receiver for the session: the spans of this process and of its children."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def tracing(otlp: OtlpReceiver) -> Iterator[TracerProvider]:
    """This process traced from here on, exporting to ``otlp``.

    It starts as a process without an endpoint, where configure_tracing installs nothing; once
    installed, the SDK stays (the tests of a process without it start one). Spans wait a minute
    for their batch: a test sends them with ``force_flush()`` and then knows they are in.
    """
    with pytest.MonkeyPatch.context() as env:
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            env.delenv(name, raising=False)
        assert configure_tracing(service="common-libs-tests", version=__version__) is None
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint)
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
        env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5")
        provider = configure_tracing(service="common-libs-tests", version=__version__)
    assert provider is not None
    yield provider
    provider.force_flush()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo :func:`configure_logging` after the test (pytest's own handlers stay untouched)."""
    root = logging.getLogger()
    level = root.level
    uvicorn_state = {
        name: (
            list(logging.getLogger(name).handlers),
            logging.getLogger(name).propagate,
            logging.getLogger(name).level,
        )
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpx2")
    }
    yield
    root.handlers[:] = [
        handler
        for handler in root.handlers
        if not any(isinstance(f, RequestContextFilter) for f in handler.filters)
    ]
    root.setLevel(level)
    for name, (handlers, propagate, logger_level) in uvicorn_state.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(logger_level)
