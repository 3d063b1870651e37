"""Preference accuracy: does the model score ``chosen`` above ``rejected``?

A causal LM is scored by its implicit reward (DPO convention, recorded in every result):

    r(q, a) = β · (log π_θ(a|q) − log π_ref(a|q))       reference = base (adapters disabled) or --ref-model
    r(q, a) = β · log π_θ(a|q)                           reference = none

with log π aggregated over response tokens as ``sum``, ``mean`` or ``l2`` (sum / √length, a
length-normalised sum); ``reference=auto`` means base when one exists, else none. A reward model
(``task="reward"``) is scored by its sequence-classification head, r(q, a) = head(q ⊕ a).

A pair is correct when r(chosen) > r(rejected); a tie counts as wrong (RewardBench v1) or half.
Ties are always counted; when every pair ties (e.g. the policy is its own ``--ref-model``, so every
implicit reward is 0) a warning says so instead of a bare 0.0. A sequence longer than ``max_length``
even after its prompt is cut from the left is not scored (its reward is NaN); a pair or item with
such a sequence is skipped, counted and named in a warning, and the rest of the run goes on.
All (prompt, response) sequences of a benchmark are sorted by token length and scored in batches of
neighbours (length bucketing), so little compute goes to padding, and a prompt shared by several
responses (a pair's chosen and rejected) runs once for all of them; results are returned in input
order, and the scores do not depend on the batch (position ids follow the attention mask).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from gemkit.data.encoding import EncodedSequence, SequenceBatch, collate, encode_sequence
from gemkit.data.records import PreferencePair, Text
from gemkit.errors import ConfigError
from gemkit.evaluation.context import EvalContext
from gemkit.logprobs import ResponseLogprobs, classifier_rewards, response_logprobs, shared_prompt_logprobs
from gemkit.progress import items_bar
from gemkit.threads import adapt_threads


@dataclass
class PreferenceScoring:
    beta: float = field(default=0.1, metadata={"help": "β in the implicit reward."})
    reference: Literal["auto", "base", "none"] = field(default="auto", metadata={
        "help": "auto (base when the model has adapters or --ref-model is given, else none), base, or none."})
    aggregate: Literal["sum", "mean", "l2"] = field(default="sum", metadata={"help": "Token log-prob aggregation."})
    ties: Literal["wrong", "half"] = field(default="wrong", metadata={"help": "A tie counts as wrong or half."})
    max_length: int = field(default=1024, metadata={"help": "Prompts longer than this are cut from the left."})

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ConfigError(f"beta must be > 0, got {self.beta}")


def resolved_reference(ctx: EvalContext, scoring: PreferenceScoring) -> str:
    if scoring.reference == "auto":
        return "base" if ctx.has_reference else "none"
    return scoring.reference


def scoring_conventions(ctx: EvalContext, scoring: PreferenceScoring) -> dict[str, Any]:
    """What the rewards mean, as written into every result."""
    if ctx.is_reward_model:
        return {"scoring": "classifier", "reward": "sequence-classification head at the last token",
                "ties": scoring.ties, "max_length": scoring.max_length, "chat_template": True}
    reference = resolved_reference(ctx, scoring)
    formula = "beta*(logp_policy - logp_ref)" if reference == "base" else "beta*logp_policy"
    return {"scoring": "implicit", "reward": formula, "beta": scoring.beta, "reference": reference,
            "reference_model": (ctx.reference.source or ctx.reference.spec.name) if ctx.reference is not None
            else ("base (adapters disabled)" if reference == "base" else None),
            "aggregate": scoring.aggregate, "ties": scoring.ties, "max_length": scoring.max_length,
            "chat_template": True}


def aggregate_logps(scores: ResponseLogprobs, how: str) -> torch.Tensor:
    if how == "mean":
        return scores.mean()
    if how == "l2":
        return scores.sum() / scores.lengths.clamp_min(1).sqrt()
    return scores.sum()


@torch.no_grad()
def sequence_rewards(ctx: EvalContext, prompts: list[Any], responses: list[str], scoring: PreferenceScoring,
                     *, bucketed: bool = True) -> list[float]:
    """Reward of each (prompt, response), in input order; NaN for a sequence whose response alone is
    longer than ``scoring.max_length`` (not scored: callers skip and count its item).

    Sequences whose prompt tokens are identical (a pair's chosen and rejected, a prompt's k
    completions) are scored together: the prompt runs once and every response on its KV cache
    (:func:`gemkit.logprobs.shared_prompt_logprobs`, exact), which for pairs saves one prompt
    forward in two. Groups are sorted by length and packed into batches of at most
    ``ctx.batch_size`` sequences (a group is split only when it is larger than that). ``bucketed=False`` scores one
    sequence at a time in input order instead (the slow baseline); the values are the same.
    """
    tok = ctx.bundle.tokenizer
    sequences = [_encoded_or_none(tok, p, r, scoring.max_length) for p, r in zip(prompts, responses, strict=True)]
    reference = "classifier" if ctx.is_reward_model else resolved_reference(ctx, scoring)
    if reference == "base" and not ctx.has_reference:
        raise ConfigError("reference=base needs a LoRA checkpoint or --ref-model; use reference=none (or auto)")
    # The classifier reads the whole sequence's last hidden state, so it scores sequences one by one.
    groups = prompt_groups(sequences) if bucketed and reference != "classifier" else \
        [[i] for i, seq in enumerate(sequences) if seq is not None]
    if bucketed:
        groups.sort(key=lambda g: max(len(sequences[i].input_ids) for i in g))
    rewards = [math.nan] * len(sequences)  # NaN = not scored (too long)
    model = ctx.bundle.model
    was_training = model.training
    model.eval()
    bar = items_bar(sum(seq is not None for seq in sequences), unit="seq")  # too-long ones are never scored
    try:
        for batch_groups in packed(groups, ctx.batch_size if bucketed else 1):
            adapt_threads()
            index = [i for g in batch_groups for i in g]
            members = [sequences[i] for i in index]
            sizes = [len(g) for g in batch_groups]
            batch = collate(members, tok.pad_token_id).to(ctx.bundle.device)
            if reference == "classifier":
                values = classifier_rewards(model, batch)
            else:
                values = aggregate_logps(_logprobs(model, batch, members, sizes), scoring.aggregate)
                if reference == "base":
                    with ctx.reference_model() as ref_model:
                        ref_batch = batch.to(next(ref_model.parameters()).device)
                        values = values - aggregate_logps(_logprobs(ref_model, ref_batch, members, sizes),
                                                          scoring.aggregate).to(values.device)
                values = scoring.beta * values
            for i, value in zip(index, values.float().tolist(), strict=True):
                rewards[i] = value
            bar.update(len(index))
    finally:
        bar.close()
        model.train(was_training)
    return rewards


def _encoded_or_none(tokenizer: Any, prompt: Any, response: str, max_length: int) -> EncodedSequence | None:
    """The encoded sequence, or None when the response alone does not fit in ``max_length``."""
    try:
        return encode_sequence(tokenizer, prompt, response, max_length=max_length)
    except ConfigError:  # encode_sequence's only error: too long even with the whole prompt cut
        return None


def prompt_groups(sequences: list[EncodedSequence | None]) -> list[list[int]]:
    """Indices of the sequences with identical prompt tokens, one list per prompt (first-seen order);
    None entries (not scored) are left out."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, seq in enumerate(sequences):
        if seq is None:
            continue
        groups.setdefault(tuple(seq.input_ids[:seq.response_start]), []).append(i)
    return list(groups.values())


def packed(groups: list[list[int]], batch_size: int) -> list[list[list[int]]]:
    """Consecutive groups packed into batches of at most ``batch_size`` sequences. A group larger
    than that (many responses to one prompt) is cut into pieces of ``batch_size``, each a batch of
    its own that runs the prompt once."""
    batches: list[list[list[int]]] = []
    count = 0
    pieces = [group[i:i + batch_size] for group in groups for i in range(0, len(group), batch_size)]
    for group in pieces:
        if not batches or count + len(group) > batch_size:
            batches.append([])
            count = 0
        batches[-1].append(group)
        count += len(group)
    return batches


def _logprobs(model: Any, batch: SequenceBatch, members: list[EncodedSequence], sizes: list[int]) -> ResponseLogprobs:
    """Shared-prompt scores where some prompt has several responses, else the plain padded forward."""
    if max(sizes) > 1:
        return shared_prompt_logprobs(model, batch, members, sizes)
    return response_logprobs(model, batch)


def pair_credit(chosen: float, rejected: float, ties: str) -> float:
    """1 if chosen > rejected, 0 if below, and a tie 0 (``wrong``) or ½ (``half``)."""
    if chosen > rejected:
        return 1.0
    if chosen == rejected and ties == "half":
        return 0.5
    return 0.0


@dataclass
class PairScores:
    """Scored pairs: accuracy over the scored ones, one row each, and what was not scored or tied."""

    accuracy: float
    items: list[dict[str, Any]]
    too_long: list[str]
    ties: int

    def counts(self) -> dict[str, int]:
        return {"scored": len(self.items), "ties": self.ties, "excluded_too_long": len(self.too_long)}


def score_pairs(ctx: EvalContext, pairs: list[PreferencePair], scoring: PreferenceScoring) -> PairScores:
    """Rewards of chosen and rejected (one pass), one item row per scored pair; pairs with an
    over-long sequence are skipped and named; ties are counted, and all-ties is warned about."""
    n = len(pairs)
    prompts: list[Text] = [p.prompt for p in pairs] * 2
    rewards = sequence_rewards(ctx, prompts, [p.chosen for p in pairs] + [p.rejected for p in pairs], scoring)
    items, too_long = [], []
    for i, pair in enumerate(pairs):
        chosen, rejected = rewards[i], rewards[n + i]
        if math.isnan(chosen) or math.isnan(rejected):
            too_long.append(pair.id)
            continue
        items.append({"id": pair.id, "correct": pair_credit(chosen, rejected, scoring.ties),
                      "reward_chosen": chosen, "reward_rejected": rejected,
                      **({"subset": pair.metadata["subset"]} if "subset" in pair.metadata else {})})
    warn_too_long(too_long, scoring.max_length)
    ties = sum(item["reward_chosen"] == item["reward_rejected"] for item in items)
    if items and ties == len(items):
        warnings.warn(f"all {ties} scored pairs tie (chosen and rejected get the same reward): the accuracy "
                      f"({'0' if scoring.ties == 'wrong' else '0.5'}) measures nothing. Is the policy its own "
                      "reference (--ref-model = the model, or no adapters with reference=base)?", stacklevel=2)
    accuracy = sum(item["correct"] for item in items) / len(items) if items else float("nan")
    return PairScores(accuracy, items, too_long, ties)


def warn_too_long(ids: list[str], max_length: int) -> None:
    """Name the items skipped because a sequence did not fit (first 10 ids)."""
    if ids:
        shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
        warnings.warn(f"{len(ids)} item(s) skipped: a response is longer than max_length={max_length} tokens "
                      f"even with its prompt cut ({shown}); raise max_length to score them", stacklevel=2)


def pairwise_accuracy(ctx: EvalContext, pairs: list[PreferencePair], scoring: PreferenceScoring
                      ) -> tuple[float, list[dict[str, Any]]]:
    """Accuracy over the scored pairs and one item row per scored pair (:func:`score_pairs`)."""
    scores = score_pairs(ctx, pairs, scoring)
    return scores.accuracy, scores.items


def per_subset(items: list[dict[str, Any]], key: str = "subset") -> dict[str, float]:
    """Mean ``correct`` per value of ``items[i][key]`` (sorted by name)."""
    groups: dict[str, list[float]] = {}
    for item in items:
        if key in item:
            groups.setdefault(str(item[key]), []).append(float(item["correct"]))
    return {name: sum(v) / len(v) for name, v in sorted(groups.items())}


def preference_result(name: str, ctx: EvalContext, pairs: list[PreferencePair], scoring: PreferenceScoring,
                      conventions: dict[str, Any] | None = None, counts: dict[str, int] | None = None,
                      metric: str = "accuracy") -> Any:
    """Score ``pairs`` and wrap accuracy, per-subset accuracy, conventions and items in a result."""
    from gemkit.evaluation.results import BenchmarkResult

    scores = score_pairs(ctx, pairs, scoring)
    return BenchmarkResult(name, {metric: scores.accuracy}, metric, {metric: True},
                           {**scoring_conventions(ctx, scoring), **(conventions or {}),
                            **({"excluded_too_long_ids": scores.too_long} if scores.too_long else {})},
                           scores.items, per_subset(scores.items), {**scores.counts(), **(counts or {})})
