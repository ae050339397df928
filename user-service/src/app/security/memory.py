"""Give the memory of each password hash back to the operating system when the hash is done.

Every Argon2id hash allocates its whole memory cost (19 MiB by default) with ``malloc`` and frees
it at the end. glibc serves a block that large with ``mmap`` and unmaps it on ``free``, but its
*dynamic* mmap threshold then rises above the freed block's size (up to 32 MiB), so from the second
hash on these blocks come from the heap or from the hashing thread's own malloc arena and stay
resident after ``free``: one block per arena of a thread that hashed, 40-115 MiB after a hundred
logins. Setting the threshold explicitly (``mallopt(M_MMAP_THRESHOLD)``, see mallopt(3))
turns the dynamic adjustment off, so every block at or above it is mapped for its hash and
unmapped after it. The value is glibc's own starting one: other blocks of 128 KiB or more are
mapped per allocation too, as they were before the first raise (the service makes few). The cost
is the page faults of each fresh mapping, about 10 ms of kernel time per hash.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

__all__ = ["GLIBC_DEFAULT_MMAP_THRESHOLD", "pin_malloc_mmap_threshold"]

GLIBC_DEFAULT_MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # <malloc.h>
_logger = logging.getLogger(__name__)


def _set_by_operator() -> bool:
    """Whether the environment already fixes glibc's threshold (then the operator's value wins)."""
    return "MALLOC_MMAP_THRESHOLD_" in os.environ or "glibc.malloc.mmap_threshold" in (
        os.environ.get("GLIBC_TUNABLES", "")
    )


def pin_malloc_mmap_threshold(threshold_bytes: int = GLIBC_DEFAULT_MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold for this process; True when it is fixed (here or by the env).

    A no-op answering False where the C library is not glibc (musl, macOS).
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    if _set_by_operator():
        return True
    libc = ctypes.CDLL(None)
    if libc.mallopt(_M_MMAP_THRESHOLD, threshold_bytes) != 1:
        _logger.warning("mallopt(M_MMAP_THRESHOLD, %d) failed", threshold_bytes)
        return False
    return True
