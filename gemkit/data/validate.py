"""Summary statistics of a preference set that parsed cleanly: counts, duplicates, token lengths.

Lengths are in the tokens a trainer would see: the prompt rendered with the model's chat template
and generation prompt, each response followed by its end-of-turn token (``gemkit.data.encoding``).
Nothing here writes a file.
"""
from __future__ import annotations

import math
from typing import Any

from gemkit.data.lengths import MAX_LISTED, classify_lengths, record_lengths
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
        return record_lengths(pair, tokenizer)
    except Exception as exc:  # a chat template may reject a message order or role (a jinja error)
        raise DataError(source, f"record '{pair.id}' cannot be tokenised with this model's chat template "
                                f"({type(exc).__name__}: {exc})", field="prompt") from None


def summarise(pairs: list[PreferencePair], tokenizer: Any, max_length: int | None = None,
              source: str = "<pairs>") -> dict[str, Any]:
    """Rows, duplicate prompts (exact and normalised), gold answers, and token-length statistics.

    ``over_max_length`` (with ``max_length``) counts pairs whose prompt plus longer response exceeds it;
    of those, ``truncated_prompts`` would train with their prompt cut from the left (the default
    ``left-prompt`` policy) and ``unfittable`` have a response of ``max_length`` tokens or more,
    which training refuses (``gemkit.data.lengths``). The first ids of each are listed.
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
        report = classify_lengths(pairs, lengths, max_length)
        summary["over_max_length"] = len(report.truncated) + len(report.unfittable)
        summary["truncated_prompts"] = len(report.truncated)
        summary["truncated_ids"] = [pair.id for pair, _, _ in report.truncated[:MAX_LISTED]]
        summary["unfittable"] = len(report.unfittable)
        summary["unfittable_ids"] = [pair.id for pair, _, _ in report.unfittable[:MAX_LISTED]]
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
                     f"{summary['over_max_length']}: {summary['truncated_prompts']} train with the prompt cut from "
                     f"the left{_ids(summary['truncated_ids'], summary['truncated_prompts'])}, {summary['unfittable']} cannot be trained on "
                     f"(a response alone fills max_length){_ids(summary['unfittable_ids'], summary['unfittable'])}")
    return "\n".join(lines)


def _ids(ids: list[str], total: int) -> str:
    return f" ({', '.join(ids)}{', …' if total > len(ids) else ''})" if ids else ""
