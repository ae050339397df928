"""What `make up` tells the developer once the fleet is ready, and whether it is true."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from common_libs.testing import LlmServer

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, CHAT_MODEL, LLM_API_KEY
from tests.fleet import Fleet


def _examples(fleet: Fleet) -> list[str]:
    return [
        line.strip().removeprefix("$ ")
        for line in fleet.lines_of("fleet")
        if line.strip().startswith("$ ")
    ]


def test_up_prints_the_addresses_the_admin_login_and_the_llm(
    fleet: Fleet, fake_llm: LlmServer
) -> None:
    printed = "\n".join(fleet.lines_of("fleet"))

    assert f"gateway   {fleet.gateway}" in printed
    assert f"API reference  {fleet.gateway}/api/docs " in printed
    assert re.search(rf"Prometheus +{fleet.prometheus} ", printed)
    assert f"admin login: {ADMIN_EMAIL} / {ADMIN_PASSWORD}" in printed
    assert f"chat: model {CHAT_MODEL} at {fake_llm.base_url}" in printed
    assert LLM_API_KEY not in printed
    examples = _examples(fleet)
    assert len(examples) >= 4
    assert all(fleet.gateway in example for example in examples)


@pytest.mark.usefixtures("first_order")
def test_the_printed_curl_examples_register_order_and_chat(fleet: Fleet) -> None:
    # make test installs curl (scripts/ensure-system-packages.sh); without it this must fail loudly.
    assert shutil.which("curl") is not None, "the printed examples use curl, which is not installed"
    bash = shutil.which("bash")
    assert bash is not None
    script = "set -euo pipefail\n" + "\n".join(_examples(fleet))

    result = subprocess.run(
        [bash, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert '"email":"ada@example.com"' in result.stdout
    assert '"status":"confirmed"' in result.stdout
    assert '"role":"assistant"' in result.stdout
