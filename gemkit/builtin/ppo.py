"""Built-in objective ``rm-ppo``: PPO against a trained reward model (InstructGPT-style RLHF).

Per prompt, k responses are sampled from the policy (the group machinery's one sample + one
forward pass); a trained ``rm`` checkpoint scores each (prompt, response). Per-token rewards are
the KL penalty to the reference plus the RM score on the last token (Ouyang et al. 2022, Eq. 2;
Ziegler et al. 2019):

    r_t = −β_KL·(log π_θ − log π_ref)_t + [t = T]·RM(x, y)

A linear value head on the policy's (detached) final hidden states gives V_t; advantages come
from GAE (γ, λ) and are whitened; the loss is the PPO-clip surrogate plus c_v × the clipped value
loss. One update per rollout (μ = 1): the ratio is 1 at the update, so clipping only bounds
later extensions. The value head is trained with the policy and checkpointed alongside it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import gemkit
from gemkit.data.encoding import collate, encode_sequence
from gemkit.errors import ConfigError
from gemkit.generation import SAMPLING_HELP, CandidateSampling
from gemkit.logprobs import classifier_rewards
from gemkit.losses.policy_gradient import (
    clipped_surrogate,
    clipped_value_loss,
    generalised_advantages,
    whiten,
)
from gemkit.scoring import ScoreResult, ScoringInputs
from gemkit.train import LossOutput, Objective, StepContext

VALUE_HEAD_FILE = "value_head.pt"


@dataclass
class PPOConfig(CandidateSampling):
    reward_model: str = field(default="", metadata={"help": "Path of a trained `rm` checkpoint (OUT/checkpoint)."})
    k: int = field(default=2, metadata={"help": "Responses sampled per prompt."})
    kl_coef: float = field(default=0.05, metadata={"help": "β_KL of the per-token KL penalty in the reward."})
    clip: float = field(default=0.2, metadata={"help": "ε of the clipped policy ratio."})
    value_clip: float = field(default=0.2, metadata={"help": "ε of the clipped value loss."})
    value_coef: float = field(default=0.1, metadata={"help": "c_v, weight of the value loss."})
    gamma: float = field(default=1.0, metadata={"help": "Discount γ of GAE."})
    gae_lambda: float = field(default=0.95, metadata={"help": "λ of GAE (not GEM's λ, the scorer's lam)."})
    top_p: float = field(default=1.0, metadata=SAMPLING_HELP["top_p"])

    def __post_init__(self) -> None:
        CandidateSampling.__post_init__(self)
        problems = []
        if not self.reward_model:
            problems.append("rm-ppo needs reward_model: PATH of a trained `rm` checkpoint (gemkit train --method rm)")
        elif not (Path(self.reward_model) / "gemkit.json").is_file():
            problems.append(f"reward_model '{self.reward_model}' is not a gemkit checkpoint (no gemkit.json); "
                            f"pass the OUT/checkpoint directory of an `rm` run")
        if self.k < 1 or self.clip <= 0 or self.value_clip <= 0:
            problems.append(f"k must be >= 1 and clip, value_clip > 0, got {self.k}, {self.clip}, {self.value_clip}")
        if not (0 <= self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            problems.append(f"gamma and gae_lambda must be in [0, 1], got {self.gamma} and {self.gae_lambda}")
        if problems:
            raise ConfigError(problems)


class RewardModelScorer:
    """Scores the group's responses with a reward model; row i answers prompt i // k."""

    name = "reward-model"

    def __init__(self, bundle: Any, prompts: list[Any], max_length: int, system: str | None) -> None:
        self.bundle, self.prompts, self.max_length, self.system = bundle, prompts, max_length, system

    @torch.no_grad()
    def score(self, inputs: ScoringInputs) -> ScoreResult:
        tokenizer = self.bundle.tokenizer
        sequences = [encode_sequence(tokenizer, self.prompts[i // inputs.group_size], text, max_length=self.max_length,
                                     system=self.system) for i, text in enumerate(inputs.texts)]
        batch = collate(sequences, tokenizer.pad_token_id).to(self.bundle.device)
        return ScoreResult(scores=classifier_rewards(self.bundle.model, batch).cpu(),
                           finished=torch.ones(len(sequences), dtype=torch.bool))


class PPO(Objective):
    """PPO-clip with a value head, GAE, and a KL-shaped reward from a trained reward model."""

    name = "rm-ppo"
    trained_responses = ()  # sampled, not read from the record
    trained_dependency = ("reward_model", "rm")  # RM + PPO: in a bench cell the reward model is part of the method
    description = "PPO (Schulman et al. 2017) against a trained `rm` checkpoint: clipped surrogate, value head, GAE, KL penalty."
    Config = PPOConfig
    needs_reference = True

    def __init__(self, config: PPOConfig):
        super().__init__(config)
        self.sampling = config.sampling()
        self.value_head: torch.nn.Linear | None = None
        self.reward_bundle: Any = None
        self._hidden: torch.Tensor | None = None

    def setup(self, ctx: StepContext) -> None:
        from gemkit.train.checkpoint import load_trained

        self.reward_bundle = load_trained(self.config.reward_model, device=str(ctx.device))
        self.reward_bundle.model.eval().requires_grad_(False)
        if self.value_head is None:
            hidden = ctx.model.get_output_embeddings().in_features
            self.value_head = torch.nn.Linear(hidden, 1).to(ctx.device)
            torch.nn.init.zeros_(self.value_head.weight)
            torch.nn.init.zeros_(self.value_head.bias)
        # The LM head's input is the final hidden state of exactly the positions whose log-probs we
        # compute (the logits_to_keep window), so one hook gives the value head its features for free.
        # That holds for the plain padded forward, hence ``share_prompt=False`` in compute_loss.
        ctx.model.get_output_embeddings().register_forward_pre_hook(self._capture)

    def _capture(self, module: Any, args: tuple[Any, ...]) -> None:
        self._hidden = args[0]

    def trainable_modules(self) -> list[torch.nn.Module]:
        return [self.value_head] if self.value_head is not None else []

    def compute_loss(self, ctx: StepContext, batch: list[Any]) -> LossOutput:
        cfg = self.config
        scorer = RewardModelScorer(self.reward_bundle, [p.prompt for p in batch], ctx.config.max_length,
                                   ctx.config.system_prompt)
        group = ctx.score_groups(batch, k=cfg.k, sampling=self.sampling, scorer=scorer,
                             mapping=lambda scores: scores.clone(), share_prompt=False)
        hidden = self._hidden[:, :-1].detach()  # [n, w, h], aligned with token_logps
        logps, mask = group.policy.token_logps, group.policy.mask
        reference = ctx.reference_logprobs(group.batch).token_logps
        kl = (logps.detach() - reference) * mask
        scores = group.result.scores.to(ctx.device).float()
        last = (mask * torch.arange(mask.shape[1], device=mask.device)).argmax(-1)  # last response position
        rewards = -cfg.kl_coef * kl
        rewards[torch.arange(mask.shape[0]), last] += scores
        values = self.value_head(hidden.float()).squeeze(-1) * mask
        advantages, returns = generalised_advantages(rewards, values.detach(), mask, gamma=cfg.gamma,
                                                     gae_lambda=cfg.gae_lambda)
        advantages = whiten(advantages, mask)
        per_token, clipped = clipped_surrogate(logps, logps.detach(), advantages, mask, clip=cfg.clip)
        policy_loss = per_token.sum() / mask.sum().clamp_min(1.0)
        value_loss = clipped_value_loss(values, values.detach(), returns, mask, clip=cfg.value_clip)
        loss = policy_loss + cfg.value_coef * value_loss
        metrics = {"reward_model_score": float(scores.mean()), "kl": float(kl.sum() / mask.sum().clamp_min(1.0)),
                   "policy_loss": float(policy_loss.detach()), "value_loss": float(value_loss.detach()),
                   "clip_fraction": float(clipped), "response_length": float(mask.sum(-1).mean())}
        return LossOutput(loss, metrics, int(mask.sum()))

    def state_dict(self) -> dict[str, Any]:
        return {"value_head": self.value_head.state_dict()} if self.value_head is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "value_head" in state and self.value_head is not None:
            self.value_head.load_state_dict(state["value_head"])

    def save_extra(self, directory: str, extras: list[dict[str, torch.Tensor]]) -> None:
        if extras:  # the value head's whole weights
            torch.save({k: v.detach().cpu() for k, v in extras[0].items()}, Path(directory) / VALUE_HEAD_FILE)


@gemkit.hookimpl
def register_objectives(register):
    register(PPO)
