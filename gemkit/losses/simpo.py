"""SimPO and ORPO: reference-free pairwise losses on length-normalised log-probs. Shapes ``[b] -> [b]``.

Both take token-mean log-probs ā = (1/|y|) Σ_t log π(y_t | x, y_<t) of chosen (ā_c) and rejected (ā_r).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def simpo_loss(chosen_mean_logps: torch.Tensor, rejected_mean_logps: torch.Tensor, *, beta: float, gamma: float,
               label_smoothing: float = 0.0) -> torch.Tensor:
    """SimPO (Meng et al. 2024, Eq. 6): L = −log σ(β·ā_c − β·ā_r − γ), with optional label smoothing ε:
    L = −(1−ε)·log σ(z) − ε·log σ(−z), z = β(ā_c − ā_r) − γ."""
    z = beta * (chosen_mean_logps - rejected_mean_logps) - gamma
    return -(1 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − eˣ) for x < 0, stable at both ends (Mächler 2012): log(−expm1(x)) near 0, log1p(−eˣ) far."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def orpo_log_odds_ratio(chosen_mean_logps: torch.Tensor, rejected_mean_logps: torch.Tensor) -> torch.Tensor:
    """log OR = log odds(y_c|x) − log odds(y_r|x), odds(y|x) = P/(1−P), P = exp(ā) (ORPO, Hong et al. 2024, Eq. 4–5)."""
    # At least fp32: in bf16 log1mexp near 0 loses every digit.
    dtype = torch.promote_types(chosen_mean_logps.dtype, torch.float32)
    c, r = chosen_mean_logps.to(dtype), rejected_mean_logps.to(dtype)
    return (c - r) - (log1mexp(c) - log1mexp(r))


def orpo_odds_ratio_loss(chosen_mean_logps: torch.Tensor, rejected_mean_logps: torch.Tensor) -> torch.Tensor:
    """L_OR = −log σ(log OR) (ORPO, Eq. 7); the full objective is L_SFT + λ·L_OR (Eq. 6)."""
    return -F.logsigmoid(orpo_log_odds_ratio(chosen_mean_logps, rejected_mean_logps))
