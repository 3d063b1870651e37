"""Built-in objective ``sega``: Self-Evaluated Group Advantage (GEM, Eq. 2) on Cognitive Filtering scores.

Per prompt q with k on-policy candidates a_1..a_k, scores S_i (Eq. 1, any ``scorer`` plugin),
rewards r_i = f(S_i) (any ``mapping`` plugin), the group-centred advantages and the loss are

    A_i = r_i − r̄,  r̄ = (1/k) Σ_j r_j                       (Eq. 2; optional ÷ std, the official code)
    L(q) = −(1/k) Σ_i A_i · log π_θ(a_i | q)                   (A_i detached)

averaged over the prompts of the micro-batch, plus an optional β·KL(π_θ ‖ π_ref) (off by default).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

import gemkit
from gemkit.components import MappingSpec, ScorerSpec, resolve_component_fields, spec_field
from gemkit.errors import ConfigError
from gemkit.gem.advantages import AdvantageRule, group_advantages, keep_mask  # noqa: F401  (re-exported)
from gemkit.gem.group import GroupBatch
from gemkit.generation import CandidateSampling
from gemkit.train import LossOutput, Objective, StepContext


@dataclass
class SegaConfig(CandidateSampling, AdvantageRule):
    """SEGA's options: the candidate sampling, how scores become advantages (:class:`AdvantageRule`),
    the scorer and the mapping (each a name plus its own options), and the loss."""

    k: int = field(default=4, metadata={"help": "Candidates sampled per prompt."})
    scorer: ScorerSpec = spec_field(ScorerSpec, "entropy", "Scorer plugin and its options: scorer=NAME, scorer.OPTION=VALUE.")
    mapping: MappingSpec = spec_field(MappingSpec, "identity",
                                      "Reward mapping r = f(S) and its options: identity, softmax (mapping.tau), rank.")
    logprob: Literal["sum", "mean"] = field(default="sum", metadata={"help": "Sequence log-prob: token sum or mean."})
    kl_coef: float = field(default=0.0, metadata={"help": "β of an optional KL-to-reference penalty (off: 0)."})

    def __post_init__(self) -> None:
        CandidateSampling.__post_init__(self)
        AdvantageRule.__post_init__(self)
        resolve_component_fields(self)
        if self.k < 1:
            raise ConfigError(f"k must be >= 1, got {self.k}")
        if self.trim_bottom >= max(self.k, 1):
            raise ConfigError(f"trim_bottom must be in [0, k), got {self.trim_bottom} with k={self.k}")
        if self.kl_coef < 0:
            raise ConfigError(f"kl_coef must be >= 0, got {self.kl_coef}")


class Sega(Objective):
    """GEM's SEGA: listwise policy gradient with group-mean-centred, self-evaluated advantages."""

    name = "sega"
    trained_responses = ()  # sampled, not read from the record
    # a bench step samples k candidates for each prompt, so it takes 2 prompts (8 candidates) and
    # 10 steps, with 48-token candidates: the embedded default then fits 15 minutes on 2 CPU cores
    bench_steps = 10
    bench_batch_size = 2
    bench_options = {"max_new_tokens": 48}  # the answer budget of the default arithmetic benchmark
    scorer_option = "scorer"
    description = "GEM SEGA (Eq. 2): sample k, score by entropy (Eq. 1), A_i = r_i - mean r, -(1/k) sum A_i log pi."
    Config = SegaConfig

    def __init__(self, config: SegaConfig):
        super().__init__(config)
        self.scorer = config.scorer.build()
        self.mapping = config.mapping.build()
        # The engine freezes a reference copy (full fine-tuning) only when the KL term needs one.
        self.needs_reference = config.kl_coef > 0
        self.sampling = config.sampling()

    def compute_loss(self, ctx: StepContext, batch: list[Any]) -> LossOutput:
        cfg = self.config
        group = ctx.score_groups(batch, k=cfg.k, sampling=self.sampling, scorer=self.scorer, mapping=self.mapping,
                             rule=cfg)
        seq_logps = group.policy.sum() if cfg.logprob == "sum" else group.policy.mean()
        loss = -(group.advantages * group.grouped(seq_logps)).sum(-1).div(cfg.k).mean()
        metrics = group.metrics()
        if cfg.kl_coef > 0:
            kl = self._kl(ctx, group)
            loss = loss + cfg.kl_coef * kl
            metrics["kl"] = float(kl.detach())
        return LossOutput(loss, metrics, int(group.policy.lengths.sum()))

    @staticmethod
    def _kl(ctx: StepContext, group: GroupBatch) -> torch.Tensor:
        """k3 estimator per token, exp(Δ) − Δ − 1 with Δ = log π_ref − log π_θ, averaged over response tokens."""
        reference = ctx.reference_logprobs(group.batch)
        delta = (reference.token_logps - group.policy.token_logps) * group.policy.mask
        per_token = (torch.exp(delta) - delta - 1) * group.policy.mask
        return per_token.sum() / group.policy.mask.sum().clamp_min(1.0)


@gemkit.hookimpl
def register_objectives(register):
    register(Sega)
