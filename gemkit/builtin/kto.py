"""Built-in objective ``kto``: Kahneman–Tversky Optimisation (Ethayarajh et al. 2024) on unpaired examples.

Each preference pair yields one desirable example (prompt, chosen) and one undesirable example
(prompt, rejected). The reference point z_ref is estimated from mismatched (prompt, response)
rows of the same micro-batch: example j's prompt with example j−1's response (cyclically), the
rotation TRL 1.16's KTOTrainer applies within each per-device batch, skipping back further where
that response answers the same prompt (a record drawn twice in a micro-batch that spans an epoch
boundary). All 4n rows (2n examples, 2n mismatched) go through ONE policy forward and ONE reference
forward.

With n = 1 pair the two examples share their prompt, so every "mismatched" row would be the
example's own prompt with its own chosen or rejected response and z_ref would be the implied
reward, not a KL estimate; like TRL, batch_size < 2 is refused (per device: each rank builds its
own rows), and so is a training set of one record, whose micro-batches all repeat it.

With ``reference_cache: DIR`` (full fine-tuning without a frozen copy) the KL rows' reference
log-probs must be those of the rows each step builds, and those depend on the shuffled
micro-batch. Setup therefore replays the engine's data order for the whole run
(:func:`~gemkit.train.reference_cache.planned_micro_batches`) and caches every distinct row those
micro-batches build, keyed by its tokens; each step looks its own 4n rows up. (Caching fixed
chunks of the training set, as DPO does, would miss the shuffled KL rows, and a last chunk of one
record could not form a mismatch at all.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

import gemkit
from gemkit.data.encoding import SequenceBatch
from gemkit.data.records import Text
from gemkit.errors import ConfigError
from gemkit.losses.checks import preference_problems
from gemkit.losses.kto import kto_loss, kto_reference_point
from gemkit.losses.metrics import preference_metrics
from gemkit.train import LossOutput, Objective, StepContext
from gemkit.train.reference_cache import (
    ReferenceCache,
    cache_sequences,
    planned_micro_batches,
    reference_sequence_logps,
)


@dataclass
class KTOConfig:
    beta: float = field(default=0.1, metadata={"help": "β, the strength of the implicit KL constraint."})
    desirable_weight: float = field(default=1.0, metadata={"help": "λ_D, weight of desirable examples."})
    undesirable_weight: float = field(default=1.0, metadata={"help": "λ_U, weight of undesirable examples."})
    reference_cache: str | None = field(default=None, metadata={
        "help": "Directory of an on-disk reference log-prob cache (full fine-tuning without a frozen copy)."})

    def __post_init__(self) -> None:
        problems = preference_problems(self.beta)
        if self.desirable_weight <= 0 or self.undesirable_weight <= 0:
            problems.append(f"desirable_weight and undesirable_weight must be > 0, got {self.desirable_weight} "
                            f"and {self.undesirable_weight}")
        if problems:
            raise ConfigError(problems)


MIN_PAIRS = 2


def batch_size_problem(pairs: int) -> str | None:
    """Why ``pairs`` per micro-batch cannot give KTO's mismatched rows, or None when it can."""
    if pairs >= MIN_PAIRS:
        return None
    return (f"kto needs batch_size >= {MIN_PAIRS} (got {pairs}): its KL reference point pairs each prompt with "
            f"another example's response from the same micro-batch, and with one pair both examples share the "
            f"prompt, so the 'mismatched' rows would be the example's own responses; set batch_size: 2 or more")


def records_problem(records: int) -> str | None:
    """Why a training set of ``records`` records cannot give mismatched rows, or None when it can
    (0: a context built without the training set, nothing to check)."""
    if records == 0 or records >= MIN_PAIRS:
        return None
    return (f"kto needs at least {MIN_PAIRS} training records (got {records}): every micro-batch would repeat "
            f"the one record, so its 'mismatched' rows would be the record's own responses; add records")


def micro_batches_problem(ctx: StepContext) -> str | None:
    """Why some micro-batch the run will draw has one prompt only (see :func:`kto_rows`), or None.
    The engine's data order is replayed without any forward pass, so this costs nothing."""
    if not ctx.records:
        return None
    for batch in planned_micro_batches(ctx):
        if len({repr(pair.prompt) for pair in batch}) < 2:
            return same_prompt_problem()
    return None


def kto_rows(batch: list[Any]) -> tuple[list[Text], list[str]]:
    """Prompts and responses of the 4n rows: [0, n) chosen, [n, 2n) rejected, [2n, 4n) mismatched.

    Example j (j < n: pair j's chosen, else pair j−n's rejected) is matched with the response of the
    nearest earlier example, cyclically, whose prompt differs from its own (:func:`mismatch_index`).
    That is example j − 1 mod 2n, TRL's rotation, unless the micro-batch holds a prompt twice (as one
    that spans an epoch boundary can): no example is ever matched with a response to its own prompt.
    """
    prompts = [p.prompt for p in batch] * 2
    responses = [p.chosen for p in batch] + [p.rejected for p in batch]
    mismatched = [responses[mismatch_index(prompts, j)] for j in range(len(prompts))]
    return prompts + prompts, responses + mismatched


def mismatch_index(prompts: list[Text], j: int) -> int:
    """The nearest i before ``j`` (cyclically: j − 1, j − 2, … mod len) with ``prompts[i] != prompts[j]``."""
    for back in range(1, len(prompts)):
        i = (j - back) % len(prompts)
        if prompts[i] != prompts[j]:
            return i
    raise ConfigError(same_prompt_problem())


def same_prompt_problem() -> str:
    return ("kto found a micro-batch whose pairs all share one prompt, so its KL reference point has no "
            "mismatched (prompt, response) row to use; the training set needs pairs of at least two prompts "
            "in every micro-batch: add records with other prompts or raise batch_size")


def encode_kto(ctx: StepContext, batch: list[Any]) -> SequenceBatch:
    """The 4n rows of :func:`kto_rows` as one padded batch."""
    problem = batch_size_problem(len(batch))
    if problem:
        raise ConfigError(problem)
    return ctx.encode(*kto_rows(batch))


def planned_rows(ctx: StepContext) -> list[SequenceBatch]:
    """Every distinct row the run's micro-batches will build, in batches of one micro-batch's 4n rows."""
    rows: dict[tuple[str, str], tuple[Text, str]] = {}
    for batch in planned_micro_batches(ctx):
        for prompt, response in zip(*kto_rows(batch), strict=True):
            rows.setdefault((repr(prompt), response), (prompt, response))
    ordered = list(rows.values())
    size = 4 * ctx.config.batch_size
    return [ctx.encode([p for p, _ in ordered[i:i + size]], [r for _, r in ordered[i:i + size]])
            for i in range(0, len(ordered), size)]


class KTO(Objective):
    """KTO: prospect-theoretic value of each example against a KL reference point."""

    name = "kto"
    description = "KTO (Ethayarajh et al. 2024): unpaired desirable/undesirable loss around a KL reference point."
    Config = KTOConfig
    needs_reference = True

    def __init__(self, config: KTOConfig):
        super().__init__(config)
        self.cache: ReferenceCache | None = None
        if config.reference_cache:
            self.needs_reference = False

    def setup(self, ctx: StepContext) -> None:
        problem = (batch_size_problem(ctx.config.batch_size) or records_problem(len(ctx.records))
                   or micro_batches_problem(ctx))
        if problem:
            raise ConfigError(problem)
        if self.config.reference_cache:
            self.cache = cache_sequences(ctx, self.config.reference_cache, planned_rows(ctx))

    def compute_loss(self, ctx: StepContext, batch: list[Any]) -> LossOutput:
        n = len(batch)
        encoded = encode_kto(ctx, batch)
        policy = ctx.policy_logprobs(encoded)
        reference = reference_sequence_logps(ctx, encoded, self.cache)
        losses, metrics = self.example_losses(policy.sum(), reference.sums.detach(), n)
        return LossOutput(losses.mean(), metrics, int(policy.lengths[:2 * n].sum()))

    def example_losses(self, policy: torch.Tensor, reference: torch.Tensor, n: int
                       ) -> tuple[torch.Tensor, dict[str, float]]:
        """Per-example losses ``[2n]`` (desirable first) from sequence log-probs of the 4n rows."""
        cfg = self.config
        z_ref = kto_reference_point(policy[2 * n:].detach(), reference[2 * n:])
        desirable = torch.arange(2 * n, device=policy.device) < n
        losses = kto_loss(policy[:2 * n], reference[:2 * n], desirable, z_ref, beta=cfg.beta,
                          desirable_weight=cfg.desirable_weight, undesirable_weight=cfg.undesirable_weight)
        rewards = cfg.beta * (policy[:2 * n] - reference[:2 * n]).detach()
        metrics = preference_metrics(rewards[:n], rewards[n:], policy[:n], policy[n:2 * n])
        metrics["kl"] = float(z_ref)
        return losses, metrics


@gemkit.hookimpl
def register_objectives(register):
    register(KTO)
