"""Preference accuracy: does the model score ``chosen`` above ``rejected``?

Implicit reward (DPO convention, recorded in every result):

    r(q, a) = β · (log π_θ(a|q) − log π_ref(a|q))       reference = base model (adapters disabled)
    r(q, a) = β · log π_θ(a|q)                           reference = none

with log π aggregated over response tokens as ``sum``, ``mean`` or ``l2`` (sum / √length). A pair is
correct when r(chosen) > r(rejected); a tie counts as wrong (RewardBench v1) or half. Pairs are
scored in batches of similar length (length bucketing), so little compute is spent on padding.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from gemkit.data.encoding import collate, encode_sequence
from gemkit.data.records import PreferencePair
from gemkit.errors import ConfigError
from gemkit.evaluation.context import EvalContext
from gemkit.logprobs import ResponseScores, response_logprobs


@dataclass
class PreferenceScoring:
    beta: float = field(default=0.1, metadata={"help": "β in the implicit reward."})
    reference: Literal["base", "none"] = field(default="base", metadata={"help": "base (adapters disabled) or none."})
    aggregate: Literal["sum", "mean", "l2"] = field(default="sum", metadata={"help": "Token log-prob aggregation."})
    ties: Literal["wrong", "half"] = field(default="wrong", metadata={"help": "A tie counts as wrong or half."})
    max_length: int = field(default=1024, metadata={"help": "Prompts longer than this are cut from the left."})

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ConfigError(f"beta must be > 0, got {self.beta}")


def _aggregate(scores: ResponseScores, how: str) -> torch.Tensor:
    if how == "mean":
        return scores.mean()
    if how == "l2":
        return scores.sum() / scores.lengths.clamp_min(1).sqrt()
    return scores.sum()


@torch.no_grad()
def sequence_rewards(ctx: EvalContext, prompts: list[Any], responses: list[str], scoring: PreferenceScoring
                     ) -> list[float]:
    """Implicit reward of each (prompt, response), in input order, scored in length-sorted batches."""
    tok = ctx.bundle.tokenizer
    sequences = [encode_sequence(tok, p, r, max_length=scoring.max_length) for p, r in zip(prompts, responses)]
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i].input_ids))
    rewards = [0.0] * len(sequences)
    model = ctx.bundle.model
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), ctx.batch_size):
            index = order[start:start + ctx.batch_size]
            batch = collate([sequences[i] for i in index], tok.pad_token_id).to(ctx.bundle.device)
            policy = _aggregate(response_logprobs(model, batch), scoring.aggregate)
            if scoring.reference == "base":
                with ctx.reference_model() as reference:
                    if reference is None:
                        raise ConfigError("reference=base needs a LoRA model or --ref-model; use reference=none")
                    policy = policy - _aggregate(response_logprobs(reference, batch), scoring.aggregate)
            for i, value in zip(index, (scoring.beta * policy).tolist()):
                rewards[i] = value
    finally:
        model.train(was_training)
    return rewards


def pairwise_accuracy(ctx: EvalContext, pairs: list[PreferencePair], scoring: PreferenceScoring
                      ) -> tuple[float, list[dict[str, Any]]]:
    """Accuracy over pairs and one item row per pair (chosen and rejected scored in one pass)."""
    n = len(pairs)
    rewards = sequence_rewards(ctx, [p.prompt for p in pairs] * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs],
                               scoring)
    items = []
    for i, pair in enumerate(pairs):
        chosen, rejected = rewards[i], rewards[n + i]
        correct = 1.0 if chosen > rejected else (0.5 if chosen == rejected and scoring.ties == "half" else 0.0)
        items.append({"id": pair.id, "correct": correct, "reward_chosen": chosen, "reward_rejected": rejected,
                      **({"subset": pair.metadata["subset"]} if "subset" in pair.metadata else {})})
    accuracy = sum(item["correct"] for item in items) / max(1, n)
    return accuracy, items
