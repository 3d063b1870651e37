"""Built-in objective ``orpo``: Odds Ratio Preference Optimisation (Hong et al. 2024), reference-free.

L = L_SFT + λ·L_OR (Eq. 6): L_SFT is the NLL of the chosen response, L_OR = −log σ(log OR) with
the odds of token-mean probabilities (Eq. 4–7). Deviation from TRL, which also puts the prompt
tokens into L_SFT: here only response tokens carry the NLL, as in the paper's Eq. 2.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gemkit
from gemkit.errors import ConfigError
from gemkit.losses.checks import preference_problems
from gemkit.losses.metrics import preference_metrics
from gemkit.losses.simpo import orpo_log_odds_ratio, orpo_odds_ratio_loss
from gemkit.train import LossOutput, Objective, StepContext


@dataclass
class ORPOConfig:
    beta: float = field(default=0.1, metadata={"help": "λ, the weight of the odds-ratio term (TRL calls it beta)."})

    def __post_init__(self) -> None:
        problems = preference_problems(self.beta, zero_beta_allowed=True)
        if problems:
            raise ConfigError(problems)


class ORPO(Objective):
    """ORPO: chosen NLL plus a log-odds-ratio penalty, no reference model."""

    name = "orpo"
    description = "ORPO (Hong et al. 2024): NLL(chosen) + lambda * -log sigmoid(log odds ratio), reference-free."
    Config = ORPOConfig

    def compute_loss(self, ctx: StepContext, batch: list[Any]) -> LossOutput:
        n = len(batch)
        policy = ctx.policy_logprobs(ctx.encode_pairs(batch))
        means = policy.mean()
        # Token-weighted NLL over every chosen response token of the micro-batch.
        nll = -policy.token_logps[:n].sum() / policy.mask[:n].sum().clamp_min(1.0)
        odds_ratio = orpo_odds_ratio_loss(means[:n], means[n:])
        loss = nll + self.config.beta * odds_ratio.mean()
        rewards = self.config.beta * means.detach()
        metrics = preference_metrics(rewards[:n], rewards[n:], policy.sum()[:n], policy.sum()[n:])
        metrics.update({"nll_loss": float(nll.detach()),
                        "log_odds_ratio": float(orpo_log_odds_ratio(means[:n], means[n:]).detach().mean())})
        return LossOutput(loss, metrics, int(policy.lengths.sum()))


@gemkit.hookimpl
def register_objectives(register):
    register(ORPO)
