"""Is a sampled candidate right? Each benchmark's own answer checker, by name, for scorer diagnostics.

- ``final-answer``: the number after the last ``Final Answer:`` (:func:`gemkit.data.arithmetic.extract_final_answer`)
  equals the gold number — what the ``arithmetic`` benchmark counts as correct (strict), and what the
  step-by-step system prompt SEGA samples with asks for.
- ``last-number``: the last number in the text equals the gold number — the ``arithmetic`` benchmark's
  flexible accuracy. The default for scorer diagnostics on ``arithmetic``: sampled candidates often
  state the right number without the ``Final Answer:`` marker or are cut at ``max_new_tokens``
  before writing it, and the diagnostics ask whether the score tracks the answer, not the format
  (Eq. 1 already scores a candidate without the marker from its last tokens).
- ``gsm8k``: GSM8K's strict extraction (``#### N``, else the last ``Final Answer: N``) and its match.
- ``math``: MATH's last ``\\boxed{}`` (else ``Final Answer:``), normalised, equal to the gold answer.

:data:`SOURCES` says, for each benchmark with gold answers, which item fields hold the question and
the gold answer and which check is its own.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gemkit.data.arithmetic import extract_final_answer, last_number
from gemkit.errors import ConfigError
from gemkit.evaluation.extract import gsm8k_match, gsm8k_strict, math_answer
from gemkit.evaluation.math_equiv import math_equal


def final_answer_correct(text: str, gold: str) -> bool:
    """Both sides normalised the same way (commas, ``$``, trailing zeros), so ``1,000`` equals ``1000``."""
    gold_value = extract_final_answer(f"Final Answer: {gold}") or gold.strip()
    return extract_final_answer(text) == gold_value


def last_number_correct(text: str, gold: str) -> bool:
    return last_number(text) == gold.strip().replace(",", "")


def gsm8k_correct(text: str, gold: str) -> bool:
    return gsm8k_match(gsm8k_strict(text), gold)


def math_correct(text: str, gold: str) -> bool:
    return math_equal(math_answer(text), gold)


CHECKS: dict[str, Callable[[str, str], bool]] = {
    "final-answer": final_answer_correct,
    "last-number": last_number_correct,
    "gsm8k": gsm8k_correct,
    "math": math_correct,
}


@dataclass(frozen=True)
class GoldSource:
    """Where a benchmark's items keep the question and the gold answer, and its own check."""

    question: str
    gold: str
    check: str


SOURCES: dict[str, GoldSource] = {
    "arithmetic": GoldSource("question", "answer", "last-number"),
    "gsm8k": GoldSource("question", "answer", "gsm8k"),
    "math": GoldSource("problem", "gold", "math"),
}


def get_check(name: str) -> Callable[[str, str], bool]:
    if name not in CHECKS:
        raise ConfigError(f"unknown answer check '{name}'; choose from {', '.join(CHECKS)}")
    return CHECKS[name]


def get_source(name: str) -> GoldSource:
    if name not in SOURCES:
        raise ConfigError(f"benchmark '{name}' has no gold answers that scorer diagnostics can read; "
                          f"choose from {', '.join(SOURCES)}")
    return SOURCES[name]
