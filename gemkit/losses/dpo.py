"""The DPO loss family on sequence log-probs. Every argument is ``[b]``; every loss returns ``[b]``.

Notation: π_c, π_r policy log-probs of chosen/rejected, ρ_c, ρ_r reference log-probs,
u = π_c − ρ_c and v = π_r − ρ_r the log-ratios, h = u − v their difference, and r_c = βu,
r_r = βv the implicit rewards (DPO, Rafailov et al. 2023, Eq. 5). A loss with
``length_normalised = True`` is fed token-mean log-probs (Σ_t log π / |y|) by the objective.
"""
from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F


class PairwiseLoss:
    """One published pairwise loss; ``__call__(π_c, π_r, ρ_c, ρ_r, β, ε) -> [b]``."""

    name: ClassVar[str]
    length_normalised: ClassVar[bool] = False

    def __call__(self, pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor, *, beta: float,
                 label_smoothing: float = 0.0) -> torch.Tensor:
        raise NotImplementedError


def _cdpo(h: torch.Tensor, beta: float, eps: float) -> torch.Tensor:
    return -(1 - eps) * F.logsigmoid(beta * h) - eps * F.logsigmoid(-beta * h)


class Sigmoid(PairwiseLoss):
    """DPO (Rafailov et al. 2023, Eq. 7): L = −log σ(βh). With label smoothing ε > 0 this is
    conservative DPO (cDPO, Mitchell 2023): L = −(1−ε)·log σ(βh) − ε·log σ(−βh)."""

    name = "sigmoid"

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        return _cdpo((pc - pr) - (rc - rr), beta, label_smoothing)


class CDPO(Sigmoid):
    """cDPO (Mitchell 2023) by name: the sigmoid loss with labels flipped with probability ε,
    L = −(1−ε)·log σ(βh) − ε·log σ(−βh), the expected DPO loss under label noise ε."""

    name = "cdpo"


class SigmoidNorm(PairwiseLoss):
    """Length-normalised DPO: L = −log σ(β·(ū − v̄)) with ū, v̄ the token-mean log-ratios."""

    name = "sigmoid_norm"
    length_normalised = True

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        return -F.logsigmoid(beta * ((pc - pr) - (rc - rr)))


class Robust(PairwiseLoss):
    """Robust DPO (Chowdhury et al. 2024, Eq. 9), unbiased under label-flip rate ε:
    L = [−(1−ε)·log σ(βh) + ε·log σ(−βh)] / (1 − 2ε)."""

    name = "robust"

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        h = (pc - pr) - (rc - rr)
        eps = label_smoothing
        return (-(1 - eps) * F.logsigmoid(beta * h) + eps * F.logsigmoid(-beta * h)) / (1 - 2 * eps)


class Hinge(PairwiseLoss):
    """SLiC-HF calibration hinge (Zhao et al. 2023, Eq. 1 with δ = 1/β): L = max(0, 1 − βh)."""

    name = "hinge"

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        return torch.relu(1 - beta * ((pc - pr) - (rc - rr)))


class IPO(PairwiseLoss):
    """IPO (Azar et al. 2023, Eq. 17, τ = β): L = (h̄ − 1/(2β))², h̄ on token-averaged log-probs —
    the normalisation the IPO authors confirmed their reported results use."""

    name = "ipo"
    length_normalised = True

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        return ((pc - pr) - (rc - rr) - 1 / (2 * beta)) ** 2


class SPPOHard(PairwiseLoss):
    """SPPO with hard win probabilities (Wu et al. 2024, Eq. 4.7 with P = 1 / 0):
    L = (u − 1/(2β))² + (v + 1/(2β))²."""

    name = "sppo_hard"

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        return (pc - rc - 0.5 / beta) ** 2 + (pr - rr + 0.5 / beta) ** 2


class NCAPair(PairwiseLoss):
    """NCA for pairs (Chen et al. 2024, Eq. 11): L = −log σ(r_c) − ½ log σ(−r_c) − ½ log σ(−r_r)."""

    name = "nca_pair"

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        chosen, rejected = beta * (pc - rc), beta * (pr - rr)
        return -F.logsigmoid(chosen) - 0.5 * F.logsigmoid(-chosen) - 0.5 * F.logsigmoid(-rejected)


class BCOPair(PairwiseLoss):
    """Binary classifier optimisation on pairs (Jung et al. 2024, Eq. 9):
    L = −log σ(r_c − δ) − log σ(−(r_r − δ)), here with δ = 0 as TRL ≥ 1.0 does
    (``bco_pair_delta`` keeps the paper's running-mean δ)."""

    name = "bco_pair"

    def __init__(self) -> None:
        self.delta = 0.0
        self.count = 0

    def _shift(self, chosen: torch.Tensor, rejected: torch.Tensor) -> float:
        return 0.0

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        chosen, rejected = beta * (pc - rc), beta * (pr - rr)
        delta = self._shift(chosen, rejected)
        return -F.logsigmoid(chosen - delta) - F.logsigmoid(-(rejected - delta))


class BCOPairDelta(BCOPair):
    """BCO with the paper's reward shift δ: the running mean of every implicit reward seen so far,
    this batch's included (Jung et al. 2024, §3.3); δ is checkpointed with the objective."""

    name = "bco_pair_delta"

    def _shift(self, chosen: torch.Tensor, rejected: torch.Tensor) -> float:
        rewards = torch.cat([chosen, rejected]).detach()
        total = self.count + rewards.numel()
        self.delta = (self.delta * self.count + float(rewards.sum())) / total
        self.count = total
        return self.delta


DPO_LOSSES: dict[str, type[PairwiseLoss]] = {
    cls.name: cls for cls in (Sigmoid, CDPO, SigmoidNorm, Robust, Hinge, IPO, SPPOHard, NCAPair, BCOPair, BCOPairDelta)
}
