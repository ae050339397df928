"""The committed openapi.json is the document the app generates: a change of the public contract
fails here until `make openapi` writes it, and a breaking one is named BREAKING."""

from __future__ import annotations

from pathlib import Path

from common_libs.testing.openapi_snapshot import check_openapi_snapshot, offline_document
from fastapi import FastAPI

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "openapi.json"


def test_committed_openapi_document_is_the_one_the_app_generates(offline_app: FastAPI) -> None:
    check_openapi_snapshot(offline_app.openapi(), OPENAPI_FILE)


def test_make_openapi_writes_the_document_the_tests_check(offline_app: FastAPI) -> None:
    assert offline_document() == offline_app.openapi()
