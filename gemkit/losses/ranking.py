"""Listwise and pairwise ranking losses on per-candidate scores: PRO and Bradley–Terry reward modelling."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def pro_loss(scores: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Preference Ranking Optimisation (Song et al. 2024, Eq. 5) for candidates ranked best first.

    ``scores[b, n]`` holds s_i = r(y^i)/T for y^1 ≻ y^2 ≻ … ≻ y^n (column order is the ranking),
    ``valid[b, n]`` masks missing candidates. Each prefix step k treats y^k as the positive against
    every lower-ranked candidate:

        L = −Σ_{k=1}^{n−1} log( exp(s_k) / Σ_{i=k}^{n} exp(s_i) )

    A pair (n = 2) reduces to −log σ(s_1 − s_2). Returns ``[b]``.
    """
    valid = torch.ones_like(scores, dtype=torch.bool) if valid is None else valid.bool()
    masked = scores.masked_fill(~valid, float("-inf"))
    # Suffix log-sum-exp: column k holds logsumexp(s_k..s_n) over valid candidates.
    suffix = torch.logcumsumexp(masked.flip(-1), dim=-1).flip(-1)
    has_lower = torch.zeros_like(valid)
    has_lower[:, :-1] = valid[:, 1:].flip(-1).cummax(-1).values.flip(-1)
    step = valid & has_lower
    terms = torch.where(step, scores - suffix, torch.zeros_like(scores))
    return -terms.sum(-1)


def bradley_terry_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, *,
                       margin: torch.Tensor | float = 0.0, center_coef: float = 0.0) -> torch.Tensor:
    """Reward-model loss (Bradley & Terry 1952; InstructGPT, Ouyang et al. 2022, Eq. 1), scalar:

        L = mean(−log σ(r_c − r_r − m)) + η · mean((r_c + r_r)²)

    m is a per-pair margin (Llama 2, Touvron et al. 2023, Eq. 2); η > 0 centres the rewards around 0
    (Eisenstein et al. 2023). Shapes ``[b]``.
    """
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards - margin).mean()
    if center_coef:
        loss = loss + center_coef * ((chosen_rewards + rejected_rewards) ** 2).mean()
    return loss
