"""This service's OpenAPI document, built offline: what ``openapi.json`` holds.

``make openapi`` (``python -m app.openapi``) writes it at the repository root, refusing a breaking
change of the public contract unless ``BREAKING=1``; ``tests/unit/test_openapi_snapshot.py`` fails
while the committed file differs (common-libs' ``testing.openapi_snapshot``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.config import Settings
from app.main import create_app

OPENAPI_FILE = Path(__file__).resolve().parents[1] / "openapi.json"


def openapi_document() -> dict[str, Any]:
    """The app's document: its default settings (no environment read), nothing opened."""
    return create_app(Settings.model_validate({"log_json": False})).openapi()


if __name__ == "__main__":  # pragma: no cover - ``make openapi``
    from common_libs.testing.openapi_snapshot import update_openapi_snapshot

    raise SystemExit(update_openapi_snapshot(openapi_document(), OPENAPI_FILE))
