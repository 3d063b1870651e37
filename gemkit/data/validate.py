"""Summary statistics of a preference file that parsed cleanly (counts, duplicates, token lengths)."""
from __future__ import annotations

from typing import Any

from gemkit.data.encoding import encode_prompt
from gemkit.data.overlap import normalise
from gemkit.data.records import PreferencePair


def _stats(values: list[int]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"min": ordered[0], "mean": round(sum(ordered) / len(ordered), 1), "p95": p95, "max": ordered[-1]}


def summarise(pairs: list[PreferencePair], tokenizer: Any, max_length: int | None = None) -> dict[str, Any]:
    """Rows, duplicate prompts, and prompt/chosen/rejected token-length statistics."""
    prompt_lengths = [len(encode_prompt(tokenizer, p.prompt)) for p in pairs]
    chosen = [len(tokenizer(p.chosen, add_special_tokens=False)["input_ids"]) + 1 for p in pairs]
    rejected = [len(tokenizer(p.rejected, add_special_tokens=False)["input_ids"]) + 1 for p in pairs]
    prompts = [normalise(p.prompt_text()) for p in pairs]
    summary: dict[str, Any] = {
        "rows": len(pairs),
        "duplicate_prompts": len(prompts) - len(set(prompts)),
        "tokens": {"prompt": _stats(prompt_lengths), "chosen": _stats(chosen), "rejected": _stats(rejected)},
        "with_gold_answer": sum(p.answer is not None for p in pairs),
    }
    if max_length is not None:
        summary["over_max_length"] = sum(
            pl + max(c, r) > max_length for pl, c, r in zip(prompt_lengths, chosen, rejected))
    return summary
