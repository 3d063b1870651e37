"""Built-in objective ``grpo``: Group Relative Policy Optimisation (Shao et al. 2024, DeepSeekMath §4.1).

Per prompt q, k candidates o_1..o_k are sampled from the current policy and rewarded; the
advantage of every token of o_i is the group-normalised reward (outcome supervision, Eq. 3):

    Â_i = (r_i − mean(r)) / (std(r) + 10⁻⁴)          (unbiased std over the group, as TRL)
    L = −(1/k) Σ_i (1/|o_i|) Σ_t [ min(ρ_t Â_i, clip(ρ_t, 1−ε_c, 1+ε_high) Â_i) − β·KL_k3(π_θ ‖ π_ref)_t ]

That per-sequence mean is ``aggregation: grpo``, gemkit's default (the paper's Eq. 3). TRL 1.16
defaults to ``dapo`` (one token mean); ``bnpo``, ``dapo`` and ``dr_grpo`` are offered with TRL's
meaning (:mod:`gemkit.losses.grpo`). gemkit's engine averages micro-batch losses, so ``dapo``, which
normalises by the tokens of the whole accumulation window, is only offered with ``grad_accum: 1``
on one process, where it equals TRL's exactly.

The sampling, the one forward pass and the group statistics are GEM's group machinery
(:func:`gemkit.gem.group.score_groups`); only the reward and the loss differ from SEGA. The
reward ``answer`` is verifiable (1 if the extracted final answer equals the gold answer, else 0);
any registered ``scorer`` name works as the reward too. One update per sample batch (μ = 1), so
ρ_t = 1 at the update and the clipping only bounds later extensions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

import gemkit
from gemkit.components import ScorerSpec, resolve_component_fields, spec_field
from gemkit.data.arithmetic import extract_final_answer, last_number
from gemkit.errors import ConfigError
from gemkit.evaluation.answer_check import get_check
from gemkit.gem.advantages import AdvantageRule
from gemkit.generation import SAMPLING_HELP, CandidateSampling
from gemkit.losses.grpo import AGGREGATIONS, grpo_loss
from gemkit.scoring import ScoreResult, ScoringInputs
from gemkit.train import LossOutput, Objective, StepContext


@dataclass
class AnswerRewardConfig:
    check: str = field(default="final-answer", metadata={
        "help": "Answer check (gemkit/evaluation/answer_check.py): final-answer (the number after the last "
                "'Final Answer:'), last-number (the text's last number: a signal for a model that seldom "
                "writes the marker), gsm8k or math."})

    def __post_init__(self) -> None:
        get_check(self.check)  # an unknown name fails at config time, naming the choices


class AnswerReward:
    """Verifiable reward: 1.0 where the candidate passes the answer ``check`` against the prompt's gold
    answer, else 0.0. ``finished`` is whether the check found an answer at all."""

    name = "answer"
    Config = AnswerRewardConfig

    def __init__(self, config: AnswerRewardConfig | None = None) -> None:
        self.config = config or AnswerRewardConfig()
        self.correct = get_check(self.config.check)

    def score(self, inputs: ScoringInputs) -> ScoreResult:
        if not inputs.answers or any(a is None for a in inputs.answers):
            raise ConfigError("reward 'answer' needs a gold answer for every prompt (the record's 'answer' field); "
                              "use the built-in arithmetic set or a scorer reward (e.g. reward: entropy)")
        correct = [self.correct(text, str(gold)) for text, gold in zip(inputs.texts, inputs.answers, strict=True)]
        answered = [(extract_final_answer(text) if self.config.check == "final-answer" else last_number(text))
                    is not None for text in inputs.texts]
        return ScoreResult(scores=torch.tensor(correct, dtype=torch.float32), finished=torch.tensor(answered))


@dataclass(frozen=True)
class RewardSpec(ScorerSpec):
    """GRPO's reward: ``answer`` (the verifiable reward above) or any registered scorer."""

    local = {"answer": AnswerReward}


@dataclass
class GRPOConfig(CandidateSampling):
    k: int = field(default=4, metadata={"help": "Candidates sampled per prompt (the group size G)."})
    reward: RewardSpec = spec_field(RewardSpec, "answer", "answer (verifiable gold-answer match) or a scorer: "
                                    "reward=NAME, reward.OPTION=VALUE.")
    beta: float = field(default=0.04, metadata={"help": "β, weight of the per-token k3 KL to the reference (0: off)."})
    kl_ratio_correction: bool = field(default=False, metadata={
        "help": "Multiply the KL term by the ratio ρ (DeepSeek-V3.2's unbiased KL gradient; TRL's default)."})
    clip: float = field(default=0.2, metadata={"help": "ε_c of the clipped ratio (its lower bound 1 − ε_c)."})
    clip_high: float | None = field(default=None, metadata={
        "help": "Upper clip bound 1 + clip_high (DAPO's clip-higher); null: the same as clip."})
    aggregation: str = field(default="grpo", metadata={
        "help": "How per-token losses are averaged: grpo (per-sequence mean, the paper), bnpo, dapo (TRL's "
                "default; token means) or dr_grpo (÷ candidates × max_new_tokens)."})
    scale_by_std: bool = field(default=True, metadata={"help": "Divide the centred reward by the group std (paper)."})
    top_p: float = field(default=1.0, metadata=SAMPLING_HELP["top_p"])

    def __post_init__(self) -> None:
        CandidateSampling.__post_init__(self)
        resolve_component_fields(self)
        problems = []
        if self.k < 2:
            problems.append(f"a group-relative advantage needs k >= 2, got k={self.k}")
        if self.beta < 0 or self.clip <= 0 or (self.clip_high is not None and self.clip_high <= 0):
            problems.append(f"beta must be >= 0 and clip, clip_high > 0, got beta={self.beta}, clip={self.clip}, "
                            f"clip_high={self.clip_high}")
        if self.aggregation not in AGGREGATIONS:
            problems.append(f"aggregation must be one of {', '.join(sorted(AGGREGATIONS))}, got {self.aggregation!r}")
        if problems:
            raise ConfigError(problems)


class GRPO(Objective):
    """GRPO: clipped policy gradient with group-normalised outcome rewards and a k3 KL penalty."""

    name = "grpo"
    trained_responses = ()  # sampled, not read from the record
    description = "GRPO (Shao et al. 2024): sample k, reward (gold answer or a scorer), A = (r - mean)/std, clipped PG + KL."
    Config = GRPOConfig
    needs_reference = True

    def __init__(self, config: GRPOConfig):
        super().__init__(config)
        self.reward = config.reward.build()
        self.sampling = config.sampling()
        if config.beta == 0:
            self.needs_reference = False

    def setup(self, ctx: StepContext) -> None:
        if self.config.aggregation != "dapo":
            return
        processes = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        if ctx.config.grad_accum != 1 or processes != 1:
            # TRL's dapo divides by the tokens of the whole window; the engine averages per micro-batch.
            raise ConfigError(f"aggregation 'dapo' needs grad_accum: 1 on one process (got grad_accum="
                              f"{ctx.config.grad_accum}, {processes} processes); use 'bnpo' (a token mean per "
                              f"micro-batch) or set grad_accum: 1")

    def compute_loss(self, ctx: StepContext, batch: list[Any]) -> LossOutput:
        cfg = self.config
        group = ctx.score_groups(batch, k=cfg.k, sampling=self.sampling, scorer=self.reward,
                                 mapping=lambda scores: scores.clone(),
                                 rule=AdvantageRule(scale_by_std=cfg.scale_by_std, std_eps=1e-4))
        logps, mask = group.policy.token_logps, group.policy.mask
        reference = ctx.reference_logprobs(group.batch).token_logps if cfg.beta > 0 else None
        # μ = 1: the sampling policy is the current one, so π_old is π_θ detached (ρ = 1, as TRL).
        loss, stats = grpo_loss(logps, logps.detach(), group.advantages.reshape(-1), mask, reference_logps=reference,
                                beta=cfg.beta, clip_low=cfg.clip, clip_high=cfg.clip_high,
                                aggregation=cfg.aggregation, max_completion_length=cfg.max_new_tokens,
                                kl_ratio_correction=cfg.kl_ratio_correction)
        metrics = group.metrics()
        metrics.update(stats)
        metrics["reward_std"] = float(group.rewards.std(-1).mean())
        return LossOutput(loss, metrics, int(group.policy.lengths.sum()))


@gemkit.hookimpl
def register_objectives(register):
    register(GRPO)
