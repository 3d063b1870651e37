"""GEM's entropy-guided score (Eq. 1) as a pure function of one candidate's token entropies."""
from __future__ import annotations

import math

import torch


def fork_count(n: int, top_m_ratio: float, top_m_count: int | None) -> int:
    """m = ⌈ρ·n⌉ (at least 1) with ρ = ``top_m_ratio``, or the fixed ``top_m_count`` capped at n."""
    if n == 0:
        return 0
    if top_m_count is not None:
        return min(n, top_m_count)
    return max(1, min(n, math.ceil(top_m_ratio * n)))


def entropy_score(entropies: torch.Tensor, final_span: tuple[int, int], *, lam: float, top_m_ratio: float,
                  top_m_count: int | None = None) -> tuple[float, float, float]:
    """S = −H_final + λ · mean(top-m H_t over the reasoning span)   (GEM, Eq. 1).

    ``entropies[n]`` are the candidate's response-token entropies (EOS and padding already removed).
    H_final is the mean entropy over ``final_span = [start, end)``; the reasoning span is every token
    before ``start``, and its m = ⌈ρ·|reasoning|⌉ highest entropies are the "fork" tokens. An empty
    final span gives H_final = 0 and an empty reasoning span a fork term of 0.
    Returns ``(score, h_final, fork_mean)``.
    """
    start, end = final_span
    h_final = float(entropies[start:end].mean()) if end > start else 0.0
    reasoning = entropies[:start]
    m = fork_count(int(reasoning.numel()), top_m_ratio, top_m_count)
    fork = float(reasoning.topk(m).values.mean()) if m else 0.0
    return -h_final + lam * fork, h_final, fork
