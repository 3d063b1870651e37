"""Built-in objective ``pro``: Preference Ranking Optimisation (Song et al. 2024), listwise.

Candidates y^1 ≻ … ≻ y^n of one prompt are scored by the policy's token-mean log-prob
r(y) = (1/|y|) Σ_t log π(y_t | x, y_<t) over a temperature T, and trained with the listwise loss
of :func:`gemkit.losses.ranking.pro_loss` plus an SFT term on the best candidate (Eq. 7).
A preference pair is the list [chosen, rejected]; with ``source: group`` the list is k sampled
candidates ranked by any registered scorer (the SEGA group machinery, one forward for all).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

import gemkit
from gemkit.components import ScorerSpec, resolve_component_fields, spec_field
from gemkit.errors import ConfigError
from gemkit.generation import SamplingConfig
from gemkit.losses.metrics import preference_metrics
from gemkit.losses.ranking import pro_loss
from gemkit.train import LossOutput, Objective, StepContext


@dataclass
class PROConfig:
    temperature: float = field(default=1.0, metadata={"help": "T: scores are r(y)/T."})
    sft_weight: float = field(default=0.05, metadata={"help": "β of the SFT term on the best candidate (paper: 0.05)."})
    source: Literal["pairs", "group"] = field(default="pairs", metadata={
        "help": "pairs: rank [chosen, rejected]; group: sample k candidates and rank them by a scorer."})
    k: int = field(default=4, metadata={"help": "Candidates per prompt with source=group."})
    scorer: ScorerSpec = spec_field(ScorerSpec, "entropy", "Scorer ranking the candidates (source=group): "
                                    "scorer=NAME, scorer.OPTION=VALUE.")
    max_new_tokens: int = field(default=128, metadata={"help": "Most tokens per sampled candidate (source=group)."})
    temperature_sampling: float = field(default=0.9, metadata={"help": "Sampling temperature (source=group)."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling mass (source=group)."})
    generator: str = field(default="hf", metadata={"help": "Engine sampling the candidates (source=group): hf or vllm."})

    def __post_init__(self) -> None:
        resolve_component_fields(self)
        problems = []
        if self.temperature <= 0:
            problems.append(f"temperature must be > 0, got {self.temperature}")
        if self.sft_weight < 0:
            problems.append(f"sft_weight must be >= 0, got {self.sft_weight}")
        if self.source == "group" and self.k < 2:
            problems.append(f"a ranking needs k >= 2 candidates, got k={self.k}")
        if problems:
            raise ConfigError(problems)
        SamplingConfig(max_new_tokens=self.max_new_tokens, temperature=self.temperature_sampling, top_p=self.top_p,
                       generator=self.generator)


class PRO(Objective):
    """PRO: listwise softmax ranking of the policy's length-normalised log-probs."""

    name = "pro"
    description = "PRO (Song et al. 2024): listwise ranking loss on pairs or scored candidate groups, plus SFT on the best."
    Config = PROConfig

    def __init__(self, config: PROConfig):
        super().__init__(config)
        self.scorer = config.scorer.build() if config.source == "group" else None
        self.sampling = SamplingConfig(max_new_tokens=config.max_new_tokens, temperature=config.temperature_sampling,
                                       top_p=config.top_p, generator=config.generator)

    def compute_loss(self, ctx: StepContext, batch: list[Any]) -> LossOutput:
        if self.config.source == "group":
            return self._group_loss(ctx, batch)
        n = len(batch)
        policy = ctx.policy_logprobs(ctx.encode_pairs(batch))
        means = policy.mean()
        ranked = torch.stack([means[:n], means[n:]], dim=-1)  # [n, 2], best first
        loss, metrics = self._ranking_loss(ranked, torch.ones_like(ranked, dtype=torch.bool))
        metrics.update(preference_metrics(means[:n], means[n:], policy.sum()[:n], policy.sum()[n:]))
        return LossOutput(loss, metrics, int(policy.lengths.sum()))

    def _ranking_loss(self, ranked_means: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        ranking = pro_loss(ranked_means / self.config.temperature, valid).mean()
        sft = -ranked_means[:, 0].mean()
        return ranking + self.config.sft_weight * sft, {"pro_loss": float(ranking.detach()), "sft_loss": float(sft.detach())}

    def _group_loss(self, ctx: StepContext, batch: list[Any]) -> LossOutput:
        cfg = self.config
        # PRO needs the group's forward in train mode with grad; score_groups gives exactly that pass.
        group = ctx.score_groups(batch, k=cfg.k, sampling=self.sampling, scorer=self.scorer,
                             mapping=lambda scores: scores.clone())
        scores = group.grouped(group.result.scores.to(ctx.device).float())
        order = scores.argsort(dim=-1, descending=True)
        means = group.grouped(group.policy.mean()).gather(-1, order)
        valid = group.keep.gather(-1, order) > 0
        loss, metrics = self._ranking_loss(means, valid)
        metrics.update(group.metrics())
        return LossOutput(loss, metrics, int(group.policy.lengths.sum()))


@gemkit.hookimpl
def register_objectives(register):
    register(PRO)
