"""The ``http`` extra: what needs aiohttp asks for it, and nothing else imports it."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import common_libs

# Imported as if aiohttp and its httpx transport were not installed (None in sys.modules makes
# their import raise ImportError, as a missing package does), in a process of its own.
_IMPORT_WITHOUT_HTTP = """
import importlib, sys
sys.modules["aiohttp"] = None
sys.modules["httpx_aiohttp"] = None
failed = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError as error:
        failed.append(f"{name}: {error}")
print("\\n".join(failed) or "ok")
"""


def _runtime_modules() -> list[str]:
    """Every module a service imports at run time: all but the test kit (the ``testing`` extra)
    and the HTTP client itself."""
    return sorted(
        info.name
        for info in pkgutil.walk_packages(common_libs.__path__, prefix="common_libs.")
        if not info.name.startswith("common_libs.testing")
        and info.name not in {"common_libs.http_client", "common_libs.events.__main__"}
    )


def test_every_runtime_module_but_the_http_client_imports_without_aiohttp() -> None:
    modules = _runtime_modules()
    assert {"common_libs.service_app", "common_libs.auth", "common_libs.events.broker"} <= set(
        modules
    )
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_WITHOUT_HTTP, *modules],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.strip() == "ok", result.stdout


def test_the_http_client_without_aiohttp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    monkeypatch.delitem(sys.modules, "common_libs.http_client")
    with pytest.raises(ImportError, match=r"needs the 'http' extra: install common-libs\[http\]"):
        importlib.import_module("common_libs.http_client")
