"""Pure tensor functions shared by scorers, objectives and evaluation.

Shapes: ``b`` batch, ``t`` positions, ``V`` vocabulary. A ``mask`` is 1 where a position counts.
"""
from __future__ import annotations

import torch


def logprobs_and_entropies(
    logits: torch.Tensor, labels: torch.Tensor, *, with_entropy: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-prob of ``labels`` and (detached) entropy, from one log-softmax.

    ``logits[b, t, V]`` predicts ``labels[b, t]``. The entropy is GEM's
    H_t = −Σ_v p_t(v) log p_t(v) over the full vocabulary at temperature 1 (paper, Eq. 1),
    computed from the same log-softmax that yields the log-prob, so scoring costs no extra pass.
    Returns ``(token_logps[b, t], token_entropies[b, t] or None)``; both in fp32.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    token_logps = logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    if not with_entropy:
        return token_logps, None
    with torch.no_grad():
        token_entropies = -(logp.exp() * logp).sum(-1)
    return token_logps, token_entropies


def token_entropies(logits: torch.Tensor) -> torch.Tensor:
    """H_t = −Σ_v softmax(z_t)_v · log softmax(z_t)_v for ``logits[..., V]`` (nats, fp32)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Mean over positions where ``mask`` is 1; 0 where a row has no such position."""
    mask = mask.to(values.dtype)
    return (values * mask).sum(dim) / mask.sum(dim).clamp_min(1.0)

