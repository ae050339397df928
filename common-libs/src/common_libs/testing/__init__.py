"""Test helpers for the fleet's suites: a real throwaway PostgreSQL and NATS server, real server
processes and the OpenAI-compatible test server.

Installed with ``common-libs[testing]``; the pytest plugin in :mod:`common_libs.testing.plugin`
is registered automatically and provides the ``postgres_server`` and ``nats_server`` fixtures.
"""

import pytest

from common_libs.testing.llm import (
    Failure,
    Hang,
    LlmControl,
    LlmServer,
    Received,
    Reply,
    Rule,
    StreamRecord,
    ToolCall,
    ToolCalls,
)
from common_libs.testing.nats import NatsServer, start_nats
from common_libs.testing.postgres import PostgresServer, create_database, start_postgres
from common_libs.testing.processes import (
    ServerProcess,
    UvicornServer,
    UvicornThread,
    eventually,
    free_port,
    wait_for_http,
    wait_until,
)
from common_libs.testing.tokens import TestTokenIssuer

# The checks assert their rules; rewritten like a test's own asserts, a failed one says what it
# compared (registered before anything imports them; the imports above do not).
pytest.register_assert_rewrite(
    "common_libs.testing.app_checks",
    "common_libs.testing.checks",
    "common_libs.testing.db_checks",
    "common_libs.testing.local_image",
    "common_libs.testing.outages",
    "common_libs.testing.problem_checks",
    "common_libs.testing.repository",
    "common_libs.testing.service_checks",
)

__all__ = [
    "Failure",
    "Hang",
    "LlmControl",
    "LlmServer",
    "NatsServer",
    "PostgresServer",
    "Received",
    "Reply",
    "Rule",
    "ServerProcess",
    "StreamRecord",
    "TestTokenIssuer",
    "ToolCall",
    "ToolCalls",
    "UvicornServer",
    "UvicornThread",
    "create_database",
    "eventually",
    "free_port",
    "start_nats",
    "start_postgres",
    "wait_for_http",
    "wait_until",
]
