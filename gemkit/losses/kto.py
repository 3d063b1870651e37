"""KTO: Kahneman–Tversky optimisation on unpaired desirable / undesirable examples (Ethayarajh et al. 2024).

Shapes: ``policy_logps``, ``reference_logps`` and ``desirable`` are ``[n]`` (one entry per example);
the KL estimate is a scalar.
"""
from __future__ import annotations

import torch


def kto_reference_point(kl_policy_logps: torch.Tensor, kl_reference_logps: torch.Tensor) -> torch.Tensor:
    """z_ref = max(0, mean(log π(y'|x) − log π_ref(y'|x))) over mismatched (x, y') pairs, detached (§4.1)."""
    return (kl_policy_logps - kl_reference_logps).mean().detach().clamp_min(0.0)


def kto_loss(policy_logps: torch.Tensor, reference_logps: torch.Tensor, desirable: torch.Tensor,
             reference_point: torch.Tensor, *, beta: float, desirable_weight: float = 1.0,
             undesirable_weight: float = 1.0) -> torch.Tensor:
    """Per-example KTO loss (Eq. 7–8), r = log π(y|x) − log π_ref(y|x):

        desirable:    λ_D · (1 − σ(β(r − z_ref)))
        undesirable:  λ_U · (1 − σ(β(z_ref − r)))

    Returns ``[n]``; the batch loss is its mean.
    """
    ratio = policy_logps - reference_logps
    gain = 1 - torch.sigmoid(beta * (ratio - reference_point))
    loss_ = 1 - torch.sigmoid(beta * (reference_point - ratio))
    return torch.where(desirable, desirable_weight * gain, undesirable_weight * loss_)
