"""Alembic environment of the sample service (the fleet's runner, no models)."""

import os

from sqlalchemy import MetaData

from common_libs.migrations import run_migrations

run_migrations(MetaData(), default_url=lambda: os.environ["SAMPLE_DATABASE_URL"])
