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
from gemkit.errors import ConfigError
from gemkit.gem.advantages import AdvantageRule, group_advantages, keep_mask  # noqa: F401  (re-exported)
from gemkit.gem.group import GroupBatch, score_groups
from gemkit.generation import SamplingConfig
from gemkit.registry import registry
from gemkit.train import LossOutput, Objective, StepContext


@dataclass
class SegaConfig:
    k: int = field(default=4, metadata={"help": "Candidates sampled per prompt."})
    temperature: float = field(default=0.9, metadata={"help": "Sampling temperature."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling mass."})
    max_new_tokens: int = field(default=128, metadata={"help": "Most tokens per candidate."})
    generator: str = field(default="hf", metadata={"help": "Engine sampling the candidates: hf (transformers) or vllm (pip install gemkit[vllm])."})
    scorer: str = field(default="entropy", metadata={"help": "Scorer plugin name (entropy, or a third-party one)."})
    scorer_options: dict[str, Any] = field(default_factory=dict, metadata={"help": "Options of the scorer's Config."})
    mapping: str = field(default="identity", metadata={"help": "Reward mapping plugin: identity, softmax, rank."})
    mapping_options: dict[str, Any] = field(default_factory=dict, metadata={"help": "Options of the mapping's Config."})
    scale_by_std: bool = field(default=False, metadata={"help": "Divide A by the group std (official code); paper: off."})
    logprob: Literal["sum", "mean"] = field(default="sum", metadata={"help": "Sequence log-prob: token sum or mean."})
    unfinished: Literal["keep", "penalise", "drop"] = field(
        default="keep", metadata={"help": "Candidates without a Final Answer marker: keep, penalise or drop."})
    unfinished_penalty: float = field(default=1.0, metadata={"help": "Subtracted from the score with unfinished=penalise."})
    trim_bottom: int = field(default=0, metadata={"help": "Drop this many lowest-scoring candidates per group."})
    pair_top_bottom: bool = field(default=False, metadata={"help": "Keep only the best and worst candidate per group."})
    kl_coef: float = field(default=0.0, metadata={"help": "β of an optional KL-to-reference penalty (off: 0)."})

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"k must be >= 1, got {self.k}")
        if self.trim_bottom < 0 or self.trim_bottom >= max(self.k, 1):
            raise ConfigError(f"trim_bottom must be in [0, k), got {self.trim_bottom} with k={self.k}")
        if self.kl_coef < 0:
            raise ConfigError(f"kl_coef must be >= 0, got {self.kl_coef}")
        SamplingConfig(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                       generator=self.generator)


class Sega(Objective):
    """GEM's SEGA: listwise policy gradient with group-mean-centred, self-evaluated advantages."""

    name = "sega"
    trained_responses = ()  # sampled, not read from the record
    # a bench step samples k candidates for each prompt, so it takes 2 prompts (8 candidates) and
    # 12 steps, with 64-token candidates: the embedded default then fits 15 minutes on 2 CPU cores
    bench_steps = 12
    bench_batch_size = 2
    bench_options = {"max_new_tokens": 64}
    scorer_option = "scorer"
    description = "GEM SEGA (Eq. 2): sample k, score by entropy (Eq. 1), A_i = r_i - mean r, -(1/k) sum A_i log pi."
    Config = SegaConfig

    def __init__(self, config: SegaConfig):
        super().__init__(config)
        self.scorer = registry("scorer").get(config.scorer).build(config.scorer_options)
        self.mapping = registry("mapping").get(config.mapping).build(config.mapping_options)
        self.rule = AdvantageRule(unfinished=config.unfinished, unfinished_penalty=config.unfinished_penalty,
                                  trim_bottom=config.trim_bottom, pair_top_bottom=config.pair_top_bottom,
                                  scale_by_std=config.scale_by_std)
        # The engine freezes a reference copy (full fine-tuning) only when the KL term needs one.
        self.needs_reference = config.kl_coef > 0
        self.sampling = SamplingConfig(max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                                       top_p=config.top_p, generator=config.generator)

    def compute_loss(self, ctx: StepContext, batch: list[Any]) -> LossOutput:
        cfg = self.config
        group = score_groups(ctx, batch, k=cfg.k, sampling=self.sampling, scorer=self.scorer, mapping=self.mapping,
                             rule=self.rule)
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
