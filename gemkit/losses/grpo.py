"""GRPO's per-token loss and the four ways of averaging it (TRL's ``loss_type``).

Per token t of candidate i (shapes ``[b, t]``; ``mask`` 1 on response tokens, the end-of-turn
token included), with ρ = exp(log π_θ − log π_old) and Â_i the group-normalised outcome reward
(DeepSeekMath, Shao et al. 2024, Eq. 3; DAPO's two clip bounds, Yu et al. 2025, Eq. 10):

    ℓ_{i,t} = −min(ρ·Â_i, clip(ρ, 1 − ε_low, 1 + ε_high)·Â_i) + β·KL_k3(π_θ ‖ π_ref)_{i,t}

The aggregations differ only in how ℓ is averaged over a micro-batch of b candidates:

    grpo     (1/b) Σ_i (1/|o_i|) Σ_t ℓ_{i,t}          DeepSeekMath Eq. 3 — gemkit's default
    bnpo     Σ_{i,t} ℓ_{i,t} / Σ_i |o_i|              token mean over the micro-batch
    dapo     Σ_{i,t} ℓ_{i,t} / Σ_i |o_i|              token mean over the whole generation batch
                                                       (DAPO Eq. 8; TRL 1.16's default) — equal to
                                                       bnpo when one micro-batch makes one step
    dr_grpo  Σ_{i,t} ℓ_{i,t} / (b · L_max)            Dr. GRPO (Liu et al. 2025, §3.2), L_max the
                                                       generation budget (max new tokens)

With ``kl_ratio_correction`` the KL term is β·ρ·KL_k3 instead (DeepSeek-V3.2, §2.1; TRL 1.16's
``use_bias_correction_kl``, on by default there): its value is unchanged on-policy (ρ = 1) but its
gradient becomes the unbiased reverse-KL gradient.

The per-sequence mean of ``grpo`` gives every token of a short answer more weight than a token of
a long one; the token means and Dr. GRPO's constant remove that length bias.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from gemkit.losses.policy_gradient import clipped_surrogate, k3_kl


def sequence_mean(per_token: torch.Tensor, mask: torch.Tensor, max_completion_length: int) -> torch.Tensor:
    """``grpo``: mean over candidates of each candidate's token mean."""
    return ((per_token * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)).mean()


def token_mean(per_token: torch.Tensor, mask: torch.Tensor, max_completion_length: int) -> torch.Tensor:
    """``bnpo`` / ``dapo``: one mean over every response token of the micro-batch."""
    return (per_token * mask).sum() / mask.sum().clamp_min(1.0)


def constant_length(per_token: torch.Tensor, mask: torch.Tensor, max_completion_length: int) -> torch.Tensor:
    """``dr_grpo``: the token sum divided by b · L_max, a constant that does not depend on the lengths."""
    return (per_token * mask).sum() / (per_token.shape[0] * max_completion_length)


Aggregation = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
AGGREGATIONS: dict[str, Aggregation] = {"grpo": sequence_mean, "bnpo": token_mean, "dapo": token_mean,
                                        "dr_grpo": constant_length}


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
              reference_logps: torch.Tensor | None = None, beta: float = 0.0, clip_low: float = 0.2,
              clip_high: float | None = None, aggregation: str = "grpo", max_completion_length: int = 1,
              kl_ratio_correction: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
    """The scalar GRPO loss of the module docstring and detached statistics (``clip_fraction``, ``kl``).

    ``advantages`` is ``[b]`` (one outcome advantage per candidate) or ``[b, t]``; ``reference_logps``
    is needed when ``beta > 0``; ``clip_high`` defaults to ``clip_low``. The KL is added per token
    before the aggregation (as TRL does), so it is averaged the same way as the surrogate.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {sorted(AGGREGATIONS)}")
    mask = mask.to(logps.dtype)
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    per_token, clipped = clipped_surrogate(logps, old_logps, advantages, mask, clip=clip_low, clip_high=clip_high)
    stats = {"clip_fraction": float(clipped)}
    if beta > 0:
        if reference_logps is None:
            raise ValueError("beta > 0 needs reference_logps")
        kl = k3_kl(logps, reference_logps) * mask
        weight = torch.exp(logps - old_logps) if kl_ratio_correction else 1.0
        per_token = per_token + beta * weight * kl
        stats["kl"] = float((kl.sum() / mask.sum().clamp_min(1.0)).detach())
    return AGGREGATIONS[aggregation](per_token, mask, max_completion_length), stats
