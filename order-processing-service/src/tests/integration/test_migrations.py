"""The Alembic history and the SQLAlchemy models describe the same schema."""

from __future__ import annotations

from common_libs.testing import PostgresServer, create_database
from common_libs.testing.db_checks import check_migrations_round_trip, check_schema_matches_models
from common_libs.testing.findings import async_findings, findings

from app.db.tables import Base
from tests.integration.conftest import alembic_config


async def test_migrated_schema_matches_models(database_url: str) -> None:
    found = await async_findings(lambda: check_schema_matches_models(database_url, Base.metadata))

    assert found == []


def test_migrations_downgrade_to_base_and_upgrade_again(postgres_server: PostgresServer) -> None:
    url = create_database(postgres_server, "order_service_migrations")
    assert findings(lambda: check_migrations_round_trip(alembic_config(url))) == []
