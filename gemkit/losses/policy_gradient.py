"""On-policy RL pieces for PPO and GRPO: advantages, clipped surrogate, value loss, KL estimator.

Shapes: ``[b, t]`` per response token, ``mask[b, t]`` 1 on response tokens (after left-alignment
no gaps are assumed: masked positions are simply ignored).
"""
from __future__ import annotations

import torch


def generalised_advantages(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, *, gamma: float,
                           gae_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE (Schulman et al. 2016, Eq. 16): δ_t = r_t + γ·V_{t+1} − V_t,  Â_t = Σ_l (γλ)^l δ_{t+l}.

    V beyond the last response token is 0 (the episode ends). Returns (advantages, returns = Â + V),
    both ``[b, t]`` and zero where ``mask`` is 0.
    """
    mask = mask.to(values.dtype)
    values = values * mask
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(values[:, 0])
    for t in reversed(range(values.shape[1])):
        next_value = values[:, t + 1] if t + 1 < values.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * gae_lambda * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask


def whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x − mean) / std over masked positions (PPO's advantage normalisation)."""
    mask = mask.to(values.dtype)
    mean = (values * mask).sum() / mask.sum().clamp_min(1.0)
    var = (((values - mean) * mask) ** 2).sum() / mask.sum().clamp_min(1.0)
    return (values - mean) * torch.rsqrt(var + eps) * mask


def clipped_surrogate(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
                      clip: float, clip_high: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO-clip (Schulman et al. 2017, Eq. 7), per token, ρ_t = exp(log π_θ − log π_old):

        ℓ_t = −min(ρ_t·Â_t, clip(ρ_t, 1−ε, 1+ε_high)·Â_t)

    ``clip_high`` (DAPO's "clip-higher", Yu et al. 2025) defaults to ε. Returns (ℓ ``[b, t]`` zero
    where masked, the fraction of response tokens whose clipped term is the smaller, detached).

    Worked example (ε = 0.2): ρ = 1.5, Â = 2 ⇒ min(3, 1.2·2) = 2.4, ℓ = −2.4 (clipped);
    ρ = 0.5, Â = 2 ⇒ min(1, 0.8·2) = 1, ℓ = −1 (the pessimistic, unclipped term);
    ρ = 0.5, Â = −1 ⇒ min(−0.5, −0.8) = −0.8, ℓ = 0.8 (clipped).
    """
    ratio = torch.exp(logps - old_logps)
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - clip, 1 + (clip if clip_high is None else clip_high)) * advantages
    per_token = -torch.minimum(unclipped, clipped) * mask
    fraction = ((clipped < unclipped).float() * mask).sum().detach() / mask.sum().clamp_min(1.0)
    return per_token, fraction


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, *,
                       clip: float) -> torch.Tensor:
    """½·max((V − R)², (clip(V, V_old ± ε) − R)²) averaged over response tokens (PPO2 value clipping)."""
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    per_token = 0.5 * torch.maximum((values - returns) ** 2, (clipped - returns) ** 2)
    return (per_token * mask).sum() / mask.sum().clamp_min(1.0)


def k3_kl(logps: torch.Tensor, reference_logps: torch.Tensor) -> torch.Tensor:
    """Per-token KL(π_θ ‖ π_ref) estimate, unbiased and ≥ 0 (Schulman 2020; GRPO, Shao et al. 2024, Eq. 4):
    exp(Δ) − Δ − 1 with Δ = log π_ref − log π_θ."""
    delta = reference_logps - logps
    return torch.exp(delta) - delta - 1
