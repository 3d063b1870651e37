"""Built-in objective ``sft``: GEM's reflective SFT stage — maximum likelihood of ``chosen``.

L = −(1/N) Σ_{t ∈ response} log π_θ(a⁺_t | q, a⁺_<t), N the number of response tokens in the
micro-batch; prompt and padding positions are masked out (the official code also trained on
padding; gemkit does not).
"""
from __future__ import annotations

from dataclasses import dataclass

import gemkit
from gemkit.train import LossOutput, Objective, StepContext


@dataclass
class SFTConfig:
    pass


class SFT(Objective):
    """Supervised fine-tuning on chosen answers (reasoning + ``Final Answer:``)."""

    name = "sft"
    trained_responses = ("chosen",)
    description = "Reflective SFT: token-level NLL of the chosen answer; prompt and padding masked."
    Config = SFTConfig

    def compute_loss(self, ctx: StepContext, batch: list) -> LossOutput:
        scores = ctx.policy_logprobs(ctx.encode([p.prompt for p in batch], [p.chosen for p in batch]))
        tokens = scores.mask.sum()
        loss = -scores.token_logps.sum() / tokens.clamp_min(1.0)
        return LossOutput(loss, {"logps/chosen": float(scores.sum().mean().detach()), "nll": float(loss.detach())},
                          int(tokens))


@gemkit.hookimpl
def register_objectives(register):
    register(SFT)
