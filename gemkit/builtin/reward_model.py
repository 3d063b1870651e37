"""Built-in objective ``rm``: a Bradley–Terry reward model on preference pairs.

The model is loaded with a sequence-classification head (``model_task = "reward"``: one scalar per
sequence, read at the last non-padding token); chosen and rejected share one forward. transformers
finds that token as the rightmost id != ``pad_token_id``; SmolLM2 pads with its end-of-turn token
``<|im_end|>``, so the reward is read at the answer's last token (the one before ``<|im_end|>``), the
same rule for every row and either padding side. Under LoRA,
peft saves the ``score`` head with the adapter (``modules_to_save``), so ``load_trained`` restores
the trained head; under full fine-tuning the checkpoint is a plain
``AutoModelForSequenceClassification`` directory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

import gemkit
from gemkit.errors import ConfigError
from gemkit.logprobs import classifier_rewards
from gemkit.losses.ranking import bradley_terry_loss
from gemkit.train import LossOutput, Objective, StepContext


@dataclass
class RewardModelConfig:
    margin: float = field(default=0.0, metadata={
        "help": "Margin m in −log σ(r_c − r_r − m); a pair's metadata['margin'] overrides it."})
    center_coef: float = field(default=0.0, metadata={"help": "η of the reward-centring term η·mean((r_c + r_r)²)."})

    def __post_init__(self) -> None:
        if self.center_coef < 0:
            raise ConfigError(f"center_coef must be >= 0, got {self.center_coef}")


class RewardModel(Objective):
    """Bradley–Terry reward model with optional margins and reward centring."""

    name = "rm"
    description = "Reward model: Bradley-Terry -log sigmoid(r_c - r_r - margin) on a sequence-classification head."
    Config = RewardModelConfig
    model_task = "reward"

    def compute_loss(self, ctx: StepContext, batch: list[Any]) -> LossOutput:
        n = len(batch)
        encoded = ctx.encode_pairs(batch)
        rewards = classifier_rewards(ctx.model, encoded)
        margin = torch.tensor([float(p.metadata.get("margin", self.config.margin)) for p in batch], device=rewards.device)
        loss = bradley_terry_loss(rewards[:n], rewards[n:], margin=margin, center_coef=self.config.center_coef)
        chosen, rejected = rewards[:n].detach(), rewards[n:].detach()
        metrics = {"rewards/chosen": float(chosen.mean()), "rewards/rejected": float(rejected.mean()),
                   "rewards/margins": float((chosen - rejected).mean()),
                   "rewards/accuracies": float((chosen > rejected).float().mean())}
        return LossOutput(loss, metrics, int(encoded.attention_mask.sum()))


@gemkit.hookimpl
def register_objectives(register):
    register(RewardModel)
