"""Built-in offline benchmarks on held-out arithmetic problems (no download; what `make bench` uses).

- ``arithmetic``: answer accuracy. Greedy generation with the chat template and the CoT instruction
  used in training; the number after the last ``Final Answer:`` must equal the gold answer (strict);
  the last number in the text is reported too (flexible).
- ``arithmetic-pref``: preference accuracy on held-out (correct, flawed) reasoning pairs, scored by
  the implicit reward of :mod:`gemkit.evaluation.preference`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gemkit
from gemkit.data.arithmetic import (
    builtin_heldout,
    builtin_heldout_pairs,
    check_level,
    extract_final_answer,
    last_number,
)
from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.preference import PreferenceScoring, pairwise_accuracy
from gemkit.evaluation.results import BenchmarkResult
from gemkit.gem.group import COT_SYSTEM_PROMPT
from gemkit.generation import generate

#: the default task (docs/metrics.md, "The default task"): one-step problems, on which the untrained
#: embedded model is neither hopeless nor saturated
DEFAULT_LEVEL = 1


@dataclass
class ArithmeticConfig:
    limit: int = field(default=150, metadata={"help": "Held-out problems to answer (150: a 10-point change is detectable)."})
    seed: int = field(default=1, metadata={"help": "Seed of the held-out problem set."})
    level: int = field(default=DEFAULT_LEVEL, metadata={"help": "1: one-step problems; 2: 2-4 steps."})
    max_new_tokens: int = field(default=48, metadata={"help": "Answer length budget (greedy); one step needs ~25 tokens."})

    def __post_init__(self) -> None:
        check_level(self.level)


class ArithmeticAccuracy:
    """Held-out answer accuracy, strict (``Final Answer: N``) and flexible (last number)."""

    name = "arithmetic"
    description = "Built-in held-out arithmetic word problems: answer accuracy (greedy, strict and flexible)."
    Config = ArithmeticConfig

    def __init__(self, config: ArithmeticConfig):
        self.config = config

    def load(self) -> list[dict[str, Any]]:
        return builtin_heldout(self.config.limit, self.config.seed, self.config.level)

    def evaluate(self, ctx: EvalContext, items: list[dict[str, Any]]) -> BenchmarkResult:
        sampling = ctx.sampling(max_new_tokens=self.config.max_new_tokens, do_sample=False)
        out = generate(ctx.bundle.model, ctx.bundle.tokenizer, [item["question"] for item in items], sampling=sampling,
                       system=COT_SYSTEM_PROMPT, batch_size=ctx.batch_size, progress=f"eval {self.name}")
        rows = []
        for item, text in zip(items, out.texts, strict=False):
            strict, flexible = extract_final_answer(text), last_number(text)
            rows.append({"id": item["id"], "correct": float(strict == item["answer"]),
                         "correct_flexible": float(flexible == item["answer"]), "gold": item["answer"],
                         "prediction": strict, "generation": text})
        n = max(1, len(rows))
        metrics = {"accuracy": sum(r["correct"] for r in rows) / n,
                   "accuracy_flexible": sum(r["correct_flexible"] for r in rows) / n}
        return BenchmarkResult(self.name, metrics, "accuracy", {"accuracy": True, "accuracy_flexible": True},
                               {"decoding": "greedy", "max_new_tokens": self.config.max_new_tokens,
                                "system_prompt": COT_SYSTEM_PROMPT, "extraction": "strict=Final Answer, flexible=last number",
                                "seed": self.config.seed, "level": self.config.level}, rows)


@dataclass
class ArithmeticPrefConfig(PreferenceScoring):
    reference: str = field(default="none", metadata={
        "help": "none: r = β·log π (GEM's convention; the same for every method and the base model); base: DPO-style."})
    limit: int = field(default=200, metadata={"help": "Held-out pairs to score (200: a 10-point change is detectable)."})
    seed: int = field(default=1, metadata={"help": "Seed of the held-out pair set."})
    level: int = field(default=DEFAULT_LEVEL, metadata={"help": "1: one-step problems; 2: 2-4 steps."})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_level(self.level)


class ArithmeticPreference:
    """Held-out preference accuracy: correct reasoning vs a flawed chain, by implicit reward."""

    name = "arithmetic-pref"
    description = "Built-in held-out arithmetic pairs: preference accuracy by implicit reward."
    Config = ArithmeticPrefConfig

    def __init__(self, config: ArithmeticPrefConfig):
        self.config = config

    def load(self) -> list[Any]:
        return builtin_heldout_pairs(self.config.limit, self.config.seed, self.config.level)

    def evaluate(self, ctx: EvalContext, items: list[Any]) -> BenchmarkResult:
        scoring = self.config
        accuracy, rows = pairwise_accuracy(ctx, items, scoring)
        return BenchmarkResult(self.name, {"accuracy": accuracy}, "accuracy", {"accuracy": True},
                               {"beta": scoring.beta, "reference": scoring.reference, "aggregate": scoring.aggregate,
                                "ties": scoring.ties, "seed": self.config.seed, "level": self.config.level}, rows)


@gemkit.hookimpl
def register_benchmarks(register):
    register(ArithmeticAccuracy)
    register(ArithmeticPreference)
