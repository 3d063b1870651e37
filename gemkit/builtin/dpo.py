"""Built-in objectives ``dpo`` (every variant of :mod:`gemkit.losses.dpo`) and ``ipo``.

Chosen and rejected go through ONE policy forward and ONE reference forward per micro-batch; the
reference is the base model with LoRA adapters disabled (no second copy), under full fine-tuning
a frozen copy of the initial weights, or — with ``reference_cache: DIR`` — log-probs computed once
before the first step and read back from disk.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

import gemkit
from gemkit.errors import ConfigError
from gemkit.losses.checks import preference_problems
from gemkit.losses.dpo import DPO_LOSSES
from gemkit.losses.metrics import preference_metrics
from gemkit.train import LossOutput, Objective, StepContext
from gemkit.train.reference_cache import (
    ReferenceCache,
    SequenceLogps,
    open_reference_cache,
    reference_sequence_logps,
)


@dataclass
class DPOConfig:
    beta: float = field(default=0.1, metadata={"help": "β, the strength of the implicit KL constraint (τ for IPO)."})
    loss: str = field(default="sigmoid", metadata={"help": f"Loss variant: {', '.join(DPO_LOSSES)}."})
    label_smoothing: float = field(default=0.0, metadata={"help": "ε for cDPO / robust DPO (probability of a flipped label)."})
    reference_cache: str | None = field(default=None, metadata={
        "help": "Directory of an on-disk reference log-prob cache (full fine-tuning without a frozen copy)."})

    def __post_init__(self) -> None:
        problems = preference_problems(self.beta, self.label_smoothing)
        if self.loss not in DPO_LOSSES:
            problems.insert(0, f"unknown DPO loss '{self.loss}'; choose one of: {', '.join(DPO_LOSSES)}")
        if problems:
            raise ConfigError(problems)


@dataclass
class IPOConfig(DPOConfig):
    loss: str = field(default="ipo", metadata={"help": "Loss variant (ipo by default)."})


class DPO(Objective):
    """Direct Preference Optimisation and its family on chosen/rejected pairs."""

    name = "dpo"
    description = "DPO and variants (sigmoid, cdpo, ipo, hinge, robust, bco_pair, sppo_hard, nca_pair, sigmoid_norm)."
    Config = DPOConfig
    needs_reference = True

    def __init__(self, config: DPOConfig):
        super().__init__(config)
        self.loss_fn = DPO_LOSSES[config.loss]()
        self.cache: ReferenceCache | None = None
        if config.reference_cache:
            self.needs_reference = False  # the engine need not freeze a copy: the cache replaces it

    def setup(self, ctx: StepContext) -> None:
        if self.config.reference_cache:
            self.cache = open_reference_cache(ctx, self.config.reference_cache, ctx.encode_pairs)

    def compute_loss(self, ctx: StepContext, batch: list[Any]) -> LossOutput:
        encoded = ctx.encode_pairs(batch)
        policy = ctx.policy_logprobs(encoded)
        reference = reference_sequence_logps(ctx, encoded, self.cache)
        losses, metrics = self.pair_losses(SequenceLogps(policy.sum(), policy.lengths), reference)
        return LossOutput(losses.mean(), metrics, int(policy.lengths.sum()))

    def pair_losses(self, policy: SequenceLogps, reference: SequenceLogps) -> tuple[torch.Tensor, dict[str, float]]:
        """Per-pair losses ``[n]`` and metrics from rows [0, n) chosen and [n, 2n) rejected."""
        n = policy.sums.shape[0] // 2
        reduce = (lambda s: s.mean()) if self.loss_fn.length_normalised else (lambda s: s.sums)
        pol, ref = reduce(policy), reduce(reference).detach()
        pc, pr, rc, rr = pol[:n], pol[n:], ref[:n], ref[n:]
        beta = self.config.beta
        losses = self.loss_fn(pc, pr, rc, rr, beta=beta, label_smoothing=self.config.label_smoothing)
        # Implicit rewards β·(log π − log π_ref) on whole-sequence log-probs for every variant, so the
        # logged rewards are comparable across variants (and equal TRL's).
        ratios = (policy.sums - reference.sums).detach()
        metrics = preference_metrics(beta * ratios[:n], beta * ratios[n:], policy.sums[:n], policy.sums[n:])
        return losses, metrics

    def state_dict(self) -> dict[str, Any]:
        return {"loss_state": dict(vars(self.loss_fn))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        vars(self.loss_fn).update(state.get("loss_state", {}))


class IPOObjective(DPO):
    """IPO as its own name, as users expect (``--method ipo``)."""

    name = "ipo"
    description = "IPO (Azar et al. 2023): squared loss on token-averaged log-ratio differences."
    Config = IPOConfig


@gemkit.hookimpl
def register_objectives(register):
    register(DPO)
    register(IPOObjective)
