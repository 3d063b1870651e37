"""RewardBench v1 (``allenai/reward-bench``, split ``filtered``) and RewardBench 2 (``allenai/reward-bench-2``).

v1: one (prompt, chosen, rejected) pair per row with its ``subset``. Accuracy per subset; the four
sections are per-example weighted means of their subsets with RewardBench's example counts as
weights, where math-prm (447 prompts) counts as 984 so that math weighs as much as the six
HumanEvalPack code subsets (6 × 164); ``score`` is the mean of the sections present (the
leaderboard's Prior Sets are not part of ``filtered`` and are not included).

v2: each row has a list of correct (``chosen``) and incorrect (``rejected``) completions; every
completion is scored on its own and the row is correct when a correct completion has the highest
score (best-of-4). A tie at the top gives ``#correct at max / #completions at max`` (``ties=fractional``,
RewardBench 2's rule) or 0 (``ties=wrong``). ``score`` is the plain mean over subsets. The Ties
subset is scored the same way here, not with RewardBench 2's composite Ties metric (recorded).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import gemkit
from gemkit.data.records import PreferencePair
from gemkit.errors import DataError
from gemkit.evaluation.context import EvalContext
from gemkit.evaluation.loading import DataOptions, Source, load_rows, row_id, text_field
from gemkit.evaluation.preference import (PreferenceScoring, pairwise_accuracy, per_subset, scoring_conventions,
                                          sequence_rewards)
from gemkit.evaluation.results import BenchmarkResult, mean

SECTIONS: dict[str, tuple[str, ...]] = {
    "chat": ("alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"),
    "chat_hard": ("mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst",
                  "llmbar-adver-GPTOut", "llmbar-adver-manual"),
    "safety": ("refusals-dangerous", "refusals-offensive", "xstest-should-refuse", "xstest-should-respond",
               "donotanswer"),
    "reasoning": ("math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"),
}

#: Per-subset weights of the section means: the subset sizes of ``filtered``, except math-prm (447 items) = 984.
EXAMPLE_COUNTS: dict[str, int] = {
    "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95, "mt-bench-easy": 28, "mt-bench-med": 40,
    "mt-bench-hard": 37, "llmbar-natural": 100, "llmbar-adver-neighbor": 134, "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46, "refusals-dangerous": 100, "refusals-offensive": 100,
    "xstest-should-refuse": 154, "xstest-should-respond": 250, "donotanswer": 136, "math-prm": 984,
    "hep-cpp": 164, "hep-go": 164, "hep-java": 164, "hep-js": 164, "hep-python": 164, "hep-rust": 164,
}


def section_scores(subset_accuracy: dict[str, float]) -> dict[str, float]:
    """Section = Σ_s acc_s · w_s / Σ_s w_s over the section's subsets present, w_s = EXAMPLE_COUNTS[s]."""
    out = {}
    for section, subsets in SECTIONS.items():
        present = [s for s in subsets if s in subset_accuracy]
        if present:
            total = sum(EXAMPLE_COUNTS[s] for s in present)
            out[section] = sum(subset_accuracy[s] * EXAMPLE_COUNTS[s] for s in present) / total
    return out


@dataclass
class RewardBenchConfig(PreferenceScoring, DataOptions):
    pass


class RewardBench:
    """RewardBench v1: per-subset accuracy, four weighted sections and their average."""

    name = "rewardbench"
    description = "RewardBench v1 (allenai/reward-bench filtered): subsets, Chat/Chat Hard/Safety/Reasoning, score."
    Config = RewardBenchConfig
    source = Source("allenai/reward-bench", None, "filtered", ("prompt", "chosen", "rejected", "subset", "id"))

    def __init__(self, config: RewardBenchConfig):
        self.config = config

    def load(self) -> list[PreferencePair]:
        where = self.config.data or self.source.hub_id
        pairs = []
        for line, row in load_rows(self.source, self.config):
            pairs.append(PreferencePair(text_field(row, "prompt", where, line), text_field(row, "chosen", where, line),
                                        text_field(row, "rejected", where, line), id=row_id(row, "id", line),
                                        metadata={"subset": text_field(row, "subset", where, line)}))
        return pairs

    def evaluate(self, ctx: EvalContext, items: list[PreferencePair]) -> BenchmarkResult:
        accuracy, rows = pairwise_accuracy(ctx, items, self.config)
        subsets = per_subset(rows)
        sections = section_scores(subsets)
        unknown = sorted(set(subsets) - set(EXAMPLE_COUNTS))
        metrics = {**sections, "score": mean(list(sections.values())), "accuracy": accuracy}
        conventions = {**scoring_conventions(ctx, self.config),
                       "sections": "per-example weighted means of subset accuracies (RewardBench EXAMPLE_COUNTS; "
                                   "math-prm weighted 984)",
                       "score": "mean of the sections present", "prior_sets": "not included",
                       "sections_present": sorted(sections), "unsectioned_subsets": unknown,
                       "accuracy": "plain mean over all pairs"}
        return BenchmarkResult(self.name, metrics, "score", {k: True for k in metrics}, conventions, rows, subsets,
                               {"scored": len(rows)})


@dataclass
class RewardBench2Config(PreferenceScoring, DataOptions):
    ties: Literal["fractional", "wrong"] = field(default="fractional", metadata={  # type: ignore[assignment]
        "help": "A tie at the top score: fractional credit (#correct at max / #at max) or wrong."})


class RewardBench2:
    """RewardBench 2: best-of-N accuracy per subset, plain mean over subsets."""

    name = "rewardbench2"
    description = "RewardBench 2 (allenai/reward-bench-2): best-of-4 accuracy per subset, fractional ties."
    Config = RewardBench2Config
    source = Source("allenai/reward-bench-2", None, "test", ("id", "prompt", "chosen", "rejected", "subset"))

    def __init__(self, config: RewardBench2Config):
        self.config = config

    def load(self) -> list[dict[str, Any]]:
        where = self.config.data or self.source.hub_id
        items = []
        for line, row in load_rows(self.source, self.config):
            lists = {}
            for key in ("chosen", "rejected"):
                value = row[key]
                if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
                    raise DataError(where, "expected a non-empty list of completion strings", line=line, field=key)
                lists[key] = value
            items.append({"id": row_id(row, "id", line), "prompt": text_field(row, "prompt", where, line),
                          "subset": text_field(row, "subset", where, line), **lists})
        return items

    def evaluate(self, ctx: EvalContext, items: list[dict[str, Any]]) -> BenchmarkResult:
        prompts, responses = [], []
        for item in items:
            for text in item["chosen"] + item["rejected"]:
                prompts.append(item["prompt"])
                responses.append(text)
        scores = sequence_rewards(ctx, prompts, responses, self.config)
        rows, offset = [], 0
        for item in items:
            k, m = len(item["chosen"]), len(item["rejected"])
            chosen, rejected = scores[offset:offset + k], scores[offset + k:offset + k + m]
            offset += k + m
            rows.append({"id": item["id"], "subset": item["subset"],
                         "correct": best_of_n_credit(chosen, rejected, self.config.ties),
                         "scores_chosen": chosen, "scores_rejected": rejected})
        subsets = per_subset(rows)
        metrics = {"score": mean(list(subsets.values())), "accuracy": mean([r["correct"] for r in rows])}
        conventions = {**scoring_conventions(ctx, self.config), "ties": self.config.ties,
                       "score": "plain mean over subsets", "ties_subset": "best-of-N like the others, "
                       "not RewardBench 2's composite Ties metric"}
        return BenchmarkResult(self.name, metrics, "score", {k: True for k in metrics}, conventions, rows, subsets,
                               {"scored": len(rows)})


def best_of_n_credit(chosen: list[float], rejected: list[float], ties: str) -> float:
    """1 if a correct completion strictly tops every incorrect one; at a tie for the top,
    ``fractional`` gives (#correct at max) / (#all at max) and ``wrong`` gives 0."""
    top = max(chosen + rejected)
    correct_at_top = sum(s == top for s in chosen)
    if correct_at_top == 0:
        return 0.0
    all_at_top = correct_at_top + sum(s == top for s in rejected)
    if all_at_top == correct_at_top:
        return 1.0
    return correct_at_top / all_at_top if ties == "fractional" else 0.0


@gemkit.hookimpl
def register_benchmarks(register):
    register(RewardBench, aliases=("reward-bench",))
    register(RewardBench2, aliases=("reward-bench-2",))
