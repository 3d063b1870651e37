"""Built-in objective ``simpo``: Simple Preference Optimisation (Meng et al. 2024), reference-free.

The implicit reward is the length-normalised policy log-prob β·ā (no reference model), with a
target margin γ: L = −log σ(β·ā_c − β·ā_r − γ) (Eq. 6). Chosen and rejected share one forward.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gemkit
from gemkit.errors import ConfigError
from gemkit.losses.checks import preference_problems
from gemkit.losses.metrics import preference_metrics
from gemkit.losses.simpo import simpo_loss
from gemkit.train import LossOutput, Objective, StepContext


@dataclass
class SimPOConfig:
    beta: float = field(default=2.0, metadata={"help": "β, the reward scale on token-mean log-probs."})
    gamma: float = field(default=1.0, metadata={"help": "γ, the target reward margin."})
    label_smoothing: float = field(default=0.0, metadata={"help": "ε, probability of a flipped label (conservative loss)."})

    def __post_init__(self) -> None:
        problems = preference_problems(self.beta, self.label_smoothing)
        if problems:
            raise ConfigError(problems)


class SimPO(Objective):
    """SimPO: margin loss on length-normalised log-probs, no reference model."""

    name = "simpo"
    description = "SimPO (Meng et al. 2024): -log sigmoid(beta*(mean logp_c - mean logp_r) - gamma), reference-free."
    Config = SimPOConfig

    def compute_loss(self, ctx: StepContext, batch: list[Any]) -> LossOutput:
        n = len(batch)
        policy = ctx.policy_logprobs(ctx.encode_pairs(batch))
        means = policy.mean()
        cfg = self.config
        losses = simpo_loss(means[:n], means[n:], beta=cfg.beta, gamma=cfg.gamma, label_smoothing=cfg.label_smoothing)
        rewards = cfg.beta * means.detach()
        metrics = preference_metrics(rewards[:n], rewards[n:], policy.sum()[:n], policy.sum()[n:])
        return LossOutput(losses.mean(), metrics, int(policy.lengths.sum()))


@gemkit.hookimpl
def register_objectives(register):
    register(SimPO)
