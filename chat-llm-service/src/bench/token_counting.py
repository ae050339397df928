"""How long counting tokens blocks: the figures behind ``LARGE_TEXT_CHARS``.

Run: ``python -m bench.token_counting`` (or ``make bench``). Prints, per text size and encoding,
the median time of one ``count_text`` call and the throughput.
"""

from __future__ import annotations

import statistics
import time

from app.utils.token_counter import LARGE_TEXT_CHARS, count_text, encoding_for_model

SAMPLE = (
    "Do you have waterproof trail running shoes in size 44, under 120 USD, that ship this week? "
    "¿También en español? 日本語の説明もありますか。 "
)
SIZES = (1_000, LARGE_TEXT_CHARS, 100_000, 1_000_000)
REPEATS = 7


def main() -> None:
    """Measure and print one line per (encoding, size)."""
    print(f"{'encoding':<12} {'chars':>9} {'tokens':>8} {'median ms':>10} {'Mtokens/s':>10}")
    for model in ("gpt-4o-mini", "gpt-4"):
        encoding = encoding_for_model(model, fallback="o200k_base")
        for size in SIZES:
            text = (SAMPLE * (size // len(SAMPLE) + 1))[:size]
            timings = []
            for _ in range(REPEATS):
                started = time.perf_counter()
                tokens = count_text(encoding.encoding, text)
                timings.append(time.perf_counter() - started)
            median = statistics.median(timings)
            print(
                f"{encoding.name:<12} {size:>9} {tokens:>8} {median * 1000:>10.2f} "
                f"{tokens / median / 1e6:>10.2f}"
            )


if __name__ == "__main__":
    main()
