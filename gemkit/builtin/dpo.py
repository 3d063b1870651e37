"""Built-in objectives ``dpo`` (with every variant of :mod:`gemkit.losses.dpo`) and ``ipo``.

Chosen and rejected go through ONE policy forward and ONE reference forward per micro-batch; the
reference is the base model with LoRA adapters disabled (no second copy), or under full
fine-tuning a frozen copy of the initial weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

import gemkit
from gemkit.errors import ConfigError
from gemkit.losses.dpo import DPO_LOSSES
from gemkit.train import LossOutput, Objective, StepContext


@dataclass
class DPOConfig:
    beta: float = field(default=0.1, metadata={"help": "β, the strength of the implicit KL constraint."})
    loss: str = field(default="sigmoid", metadata={"help": f"Loss variant: {', '.join(DPO_LOSSES)}."})
    label_smoothing: float = field(default=0.0, metadata={"help": "ε for cDPO / robust DPO (probability of a flipped label)."})

    def __post_init__(self) -> None:
        if self.loss not in DPO_LOSSES:
            raise ConfigError(f"unknown DPO loss '{self.loss}'; choose one of: {', '.join(DPO_LOSSES)}")
        if self.beta <= 0:
            raise ConfigError(f"beta must be > 0, got {self.beta}")
        if not 0 <= self.label_smoothing < 0.5:
            raise ConfigError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")


@dataclass
class IPOConfig(DPOConfig):
    loss: str = field(default="ipo", metadata={"help": "Loss variant (ipo by default)."})


class DPO(Objective):
    """Direct Preference Optimisation and its family on chosen/rejected pairs."""

    name = "dpo"
    description = "DPO and variants (sigmoid, ipo, hinge, robust, cDPO, bco_pair, sppo_hard, nca_pair, sigmoid_norm)."
    Config = DPOConfig
    needs_reference = True

    def __init__(self, config: DPOConfig):
        super().__init__(config)
        self.loss_fn = DPO_LOSSES[config.loss]()

    def compute_loss(self, ctx: StepContext, batch: list[Any]) -> LossOutput:
        n = len(batch)
        encoded = ctx.encode_pairs(batch)
        policy = ctx.policy_logprobs(encoded)
        reference = ctx.reference_logprobs(encoded)
        reduce = (lambda s: s.mean()) if self.loss_fn.length_normalised else (lambda s: s.sum())
        pol, ref = reduce(policy), reduce(reference).detach()
        pc, pr, rc, rr = pol[:n], pol[n:], ref[:n], ref[n:]
        losses = self.loss_fn(pc, pr, rc, rr, beta=self.config.beta, label_smoothing=self.config.label_smoothing)
        chosen_rewards = (self.config.beta * (pc - rc)).detach()
        rejected_rewards = (self.config.beta * (pr - rr)).detach()
        metrics = {
            "rewards/chosen": float(chosen_rewards.mean()), "rewards/rejected": float(rejected_rewards.mean()),
            "rewards/margins": float((chosen_rewards - rejected_rewards).mean()),
            "rewards/accuracies": float((chosen_rewards > rejected_rewards).float().mean()),
            "logps/chosen": float(policy.sum()[:n].mean().detach()), "logps/rejected": float(policy.sum()[n:].mean().detach()),
        }
        return LossOutput(losses.mean(), metrics, int(policy.lengths.sum()))

    def state_dict(self) -> dict[str, Any]:
        return {"loss_state": {k: v for k, v in vars(self.loss_fn).items()}}

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
