"""/ready tells the truth about the database: 200 while it answers, 503 once it is stopped."""

from __future__ import annotations

from common_libs.testing.db_checks import readiness_test

from app.main import create_app
from tests.conftest import make_settings

test_ready_tells_whether_the_database_answers = readiness_test(
    lambda url: create_app(make_settings(database_url=url)), checks={"database": "ok"}
)
