"""The assistant's own metrics (beside the HTTP histograms every service has on ``/metrics``).

Labels are bounded: tool names are the four tools or ``unknown``, outcomes a fixed set, models
the configured ones.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["ROUNDS", "TIME_TO_FIRST_TOKEN", "TOKENS", "TOOL_CALLS"]

TOOL_CALLS = Counter(
    "chat_tool_calls_total",
    "Tool calls the model asked for, by tool and outcome "
    "(ok, not_found, invalid_arguments, unknown_tool, failed, no_room).",
    ["tool", "outcome"],
)
ROUNDS = Histogram(
    "chat_tool_rounds",
    "Rounds of tool calls per chat turn (0: the model answered at once).",
    buckets=(0, 1, 2, 3, 4, 5, 10),
)
TOKENS = Counter(
    "chat_tokens_total",
    "Tokens of chat turns by model and kind (prompt, completion), every round included.",
    ["model", "kind"],
)
TIME_TO_FIRST_TOKEN = Histogram(
    "chat_time_to_first_token_seconds",
    "From a streamed turn's arrival to its first piece of text leaving the service.",
    ["model"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
