"""Summary statistics of a preference set that parsed cleanly: counts, duplicates, token lengths.

Lengths are in the tokens a trainer would see: the prompt rendered with the model's chat template
and generation prompt, each response followed by its end-of-turn token (``gemkit.data.encoding``).
Nothing here writes a file.
"""
from __future__ import annotations

import math
from typing import Any

from gemkit.data.encoding import encode_prompt, encode_response
from gemkit.data.overlap import normalise
from gemkit.data.records import PreferencePair
from gemkit.errors import DataError


def length_stats(values: list[int]) -> dict[str, float]:
    """min, mean (1 decimal), p95 (nearest rank: the ceil(0.95·n)-th smallest) and max."""
    if not values:
        raise ValueError("length_stats needs at least one value")
    ordered = sorted(values)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return {"min": ordered[0], "mean": round(sum(ordered) / len(ordered), 1), "p95": p95, "max": ordered[-1]}


def _lengths(pair: PreferencePair, tokenizer: Any, source: str) -> tuple[int, int, int]:
    try:
        return (len(encode_prompt(tokenizer, pair.prompt)), len(encode_response(tokenizer, pair.chosen)),
                len(encode_response(tokenizer, pair.rejected)))
    except Exception as exc:  # a chat template may reject a message order or role (a jinja error)
        raise DataError(source, f"record '{pair.id}' cannot be tokenised with this model's chat template "
                                f"({type(exc).__name__}: {exc})", field="prompt") from None


def summarise(pairs: list[PreferencePair], tokenizer: Any, max_length: int | None = None,
              source: str = "<pairs>") -> dict[str, Any]:
    """Rows, duplicate prompts (exact and normalised), gold answers, and token-length statistics.

    ``over_max_length`` (with ``max_length``) counts pairs whose prompt plus longer response exceeds it.
    """
    if not pairs:
        raise DataError(source, "no records")
    lengths = [_lengths(pair, tokenizer, source) for pair in pairs]
    exact = [pair.prompt_text() for pair in pairs]
    summary: dict[str, Any] = {
        "source": source,
        "rows": len(pairs),
        "duplicate_prompts": len(exact) - len(set(exact)),
        "duplicate_prompts_normalised": len(exact) - len({normalise(text) for text in exact}),
        "with_gold_answer": sum(pair.answer is not None for pair in pairs),
        "tokens": {name: length_stats([row[i] for row in lengths])
                   for i, name in enumerate(("prompt", "chosen", "rejected"))},
    }
    if max_length is not None:
        summary["max_length"] = max_length
        summary["over_max_length"] = sum(p + max(c, r) > max_length for p, c, r in lengths)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """The human-readable form printed by ``gemkit data validate``."""
    lines = [f"{summary['source']}: OK, {summary['rows']} pairs, {summary['with_gold_answer']} with gold answers",
             f"  duplicate prompts: {summary['duplicate_prompts']} exact, "
             f"{summary['duplicate_prompts_normalised']} after normalising"]
    for field, stats in summary["tokens"].items():
        lines.append(f"  {field:<8} tokens: min {stats['min']}  mean {stats['mean']}  p95 {stats['p95']}  "
                     f"max {stats['max']}")
    if "over_max_length" in summary:
        lines.append(f"  pairs over {summary['max_length']} tokens (prompt + longer response): "
                     f"{summary['over_max_length']}")
    return "\n".join(lines)
