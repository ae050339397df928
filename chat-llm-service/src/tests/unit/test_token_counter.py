"""Token counting is exact (tiktoken's own counts) and needs no network."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import tiktoken
from common_libs.testing import free_port
from tiktoken_ext import openai_public

from app.utils import token_counter

SERVICE_ROOT = Path(__file__).resolve().parents[2]
TEXT = "Do you sell waterproof hiking boots in size 44? ¿Y en español? 日本語も。 <|endoftext|>"

# The subprocess has no way out: connecting a socket fails, and so would any proxy. It asks the
# app (in process, no lifespan, so the encodings are prepared on first use) over HTTP.
OFFLINE_SCRIPT = r"""
import asyncio, json, socket, sys

def refuse(*args, **kwargs):
    raise OSError("network is unreachable in this test")

socket.socket.connect = refuse
socket.create_connection = refuse

import httpx, tiktoken
from common_libs.auth import TokenVerifier
from common_libs.testing import TestTokenIssuer
from common_libs.testing.app_checks import asgi_client
from app.config import Settings
from app.main import create_app

async def main(text):
    issuer = TestTokenIssuer()
    app = create_app(Settings.model_validate({"environment": "test", "log_json": False}))
    app.state.token_verifier = TokenVerifier(
        issuer.key_source(), issuer=issuer.issuer, audience=issuer.audience
    )
    result = {}
    async with asgi_client(app, base_url="http://chat") as client:
        for model in ("gpt-4o-mini", "gpt-4"):
            answer = await client.post(
                "/chat/count_tokens", json={"text": text, "model": model}, headers=issuer.headers()
            )
            theirs = tiktoken.encoding_for_model(model)
            result[model] = {
                "status": answer.status_code,
                "answer": answer.json(),
                "tiktoken": len(theirs.encode(text, disallowed_special=())),
                "ids": theirs.encode("tiktoken is great!"),
            }
    print(json.dumps(result))

asyncio.run(main(sys.argv[1]))
"""


def test_count_tokens_equals_tiktoken_for_both_encodings_with_the_network_unreachable(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "fresh-cache"
    closed = f"http://127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "TIKTOKEN_CACHE_DIR": str(cache),
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "ALL_PROXY": closed,
        "NO_PROXY": "",
    }
    assert not cache.exists()

    completed = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT, TEXT],
        cwd=SERVICE_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.splitlines()[-1])
    assert result["gpt-4o-mini"]["answer"]["encoding"] == "o200k_base"
    assert result["gpt-4"]["answer"]["encoding"] == "cl100k_base"
    for counts in result.values():
        assert counts["status"] == 200
        assert counts["answer"]["tokens"] == counts["tiktoken"]
    # OpenAI's cookbook example, an independent check that the files are the real ones.
    assert result["gpt-4"]["ids"] == [83, 1609, 5963, 374, 2294, 0]
    assert len(list(cache.iterdir())) == 2


def test_expected_hashes_are_read_from_tiktoken_itself() -> None:
    source = token_counter.tiktoken_source("cl100k_base")

    assert source.url == "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    assert source.expected_hash == (
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
    )
    assert (
        source.cache_file_name
        == hashlib.sha1(source.url.encode(), usedforsecurity=False).hexdigest()
    )


def test_a_corrupted_cached_file_is_replaced_by_the_verified_one(tmp_path: Path) -> None:
    source = token_counter.tiktoken_source("o200k_base")
    (tmp_path / source.cache_file_name).write_bytes(b"not an encoding")

    path = token_counter.install_encoding("o200k_base", tmp_path)

    assert hashlib.sha256(path.read_bytes()).hexdigest() == source.expected_hash


def test_unknown_model_uses_the_fallback_encoding() -> None:
    encoding = token_counter.encoding_for_model("llama3.1:8b", fallback="cl100k_base")

    assert (encoding.name, encoding.is_fallback) == ("cl100k_base", True)


async def test_large_text_is_counted_off_the_event_loop() -> None:
    encoding = token_counter.encoding_for_model("gpt-4o-mini", fallback="o200k_base").encoding
    text = "The quick brown fox jumps over the lazy dog. " * 40_000
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    started = time.monotonic()
    tokens = await token_counter.count_text_async(encoding, text)
    finished = time.monotonic()
    ticker.cancel()

    assert tokens == len(encoding.encode(text))
    assert any(started < moment < finished for moment in ticks)


# A fresh process: which encodings tiktoken holds after preparing, then after one model's use.
LAZY_SCRIPT = r"""
import asyncio, json
import tiktoken.registry
from app.utils import token_counter

token_counter.prepare_encodings()
prepared = sorted(tiktoken.registry.ENCODINGS)
model = token_counter.encoding_for_model_async("gpt-4o-mini", fallback="o200k_base")
encoding = asyncio.run(model)
tokens = token_counter.count_text(encoding.encoding, "hi")
used = sorted(tiktoken.registry.ENCODINGS)
print(json.dumps({"prepared": prepared, "used": used, "name": encoding.name, "tokens": tokens}))
"""


def test_encodings_are_loaded_on_first_use_only(tiktoken_cache_dir: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", LAZY_SCRIPT],
        cwd=SERVICE_ROOT,
        env={**os.environ, "TIKTOKEN_CACHE_DIR": tiktoken_cache_dir},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.splitlines()[-1])
    assert result["prepared"] == []
    assert result["used"] == ["o200k_base"]
    assert (result["name"], result["tokens"]) == ("o200k_base", 1)


def test_a_loaded_encoding_keeps_no_python_ranks_and_works_as_a_fresh_one() -> None:
    # The Python-side ranks (27 MiB for o200k_base) are released after loading: the pinned
    # tiktoken must encode and decode exactly as an encoding built from the same file that
    # keeps them (see token_counter._release_python_ranks).
    encoding = token_counter.load_encoding("o200k_base")
    fresh = tiktoken.Encoding(**openai_public.o200k_base())
    ids = fresh.encode(TEXT, allowed_special="all")

    assert encoding._mergeable_ranks == {}
    assert len(fresh._mergeable_ranks) == 199_998
    assert encoding.encode(TEXT, allowed_special="all") == ids
    assert encoding.encode_ordinary(TEXT) == fresh.encode_ordinary(TEXT)
    assert encoding.decode(ids) == fresh.decode(ids) == TEXT
    assert encoding.encode_single_token(b" walnut") == fresh.encode_single_token(b" walnut")
    assert encoding.decode_single_token_bytes(1000) == fresh.decode_single_token_bytes(1000)
    assert encoding.n_vocab == fresh.n_vocab
    assert encoding.token_byte_values() == fresh.token_byte_values()
    assert encoding.__getstate__() == "o200k_base"  # pickled by name, never by its ranks
