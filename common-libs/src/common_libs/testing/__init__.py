"""Test helpers for the fleet's suites: a real throwaway PostgreSQL, real server processes and
the OpenAI-compatible test server.

Installed with ``common-libs[testing]``; the pytest plugin in :mod:`common_libs.testing.plugin`
is registered automatically and provides the ``postgres_server`` fixture.
"""

from common_libs.testing.llm import (
    Failure,
    Hang,
    LlmControl,
    LlmServer,
    Received,
    Reply,
    StreamRecord,
    ToolCall,
    ToolCalls,
)
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

__all__ = [
    "Failure",
    "Hang",
    "LlmControl",
    "LlmServer",
    "PostgresServer",
    "Received",
    "Reply",
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
    "start_postgres",
    "wait_for_http",
    "wait_until",
]
