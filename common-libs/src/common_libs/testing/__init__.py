"""Test helpers for the fleet's suites: a real throwaway PostgreSQL and real server processes.

Installed with ``common-libs[testing]``; the pytest plugin in :mod:`common_libs.testing.plugin`
is registered automatically and provides the ``postgres_server`` fixture.
"""

from common_libs.testing.postgres import PostgresServer, create_database, start_postgres
from common_libs.testing.processes import ServerProcess, free_port, wait_for_http, wait_until
from common_libs.testing.tokens import TestTokenIssuer

__all__ = [
    "PostgresServer",
    "ServerProcess",
    "TestTokenIssuer",
    "create_database",
    "free_port",
    "start_postgres",
    "wait_for_http",
    "wait_until",
]
