"""The DPO loss family on sequence log-probs. Shapes: every argument is ``[b]``; returns ``[b]``.

Notation: π_c, π_r policy log-probs of chosen/rejected, ρ_c, ρ_r reference log-probs, and
h = (π_c − π_r) − (ρ_c − ρ_r) the difference of log-ratios; r_c = β(π_c − ρ_c), r_r = β(π_r − ρ_r)
the implicit rewards. ``length_normalised`` losses are fed token-mean log-probs by the objective.
"""
from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F


class PairwiseLoss:
    name: ClassVar[str]
    length_normalised: ClassVar[bool] = False

    def __call__(self, pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor, *, beta: float,
                 label_smoothing: float = 0.0) -> torch.Tensor:
        raise NotImplementedError


class Sigmoid(PairwiseLoss):
    """DPO (Rafailov et al. 2023, Eq. 7) with cDPO label smoothing ε (Mitchell 2023):
    L = −(1−ε)·log σ(βh) − ε·log σ(−βh)."""

    name = "sigmoid"

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        h = (pc - pr) - (rc - rr)
        return -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)


class SigmoidNorm(Sigmoid):
    """DPO on length-normalised (token-mean) log-probs."""

    name = "sigmoid_norm"
    length_normalised = True


class Robust(PairwiseLoss):
    """Robust DPO (Chowdhury et al. 2024), unbiased under label-flip rate ε:
    L = [−(1−ε)·log σ(βh) + ε·log σ(−βh)] / (1 − 2ε)."""

    name = "robust"

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        h = (pc - pr) - (rc - rr)
        return (-(1 - label_smoothing) * F.logsigmoid(beta * h) + label_smoothing * F.logsigmoid(-beta * h)) / (
            1 - 2 * label_smoothing)


class Hinge(PairwiseLoss):
    """SLiC hinge (Zhao et al. 2023): L = max(0, 1 − βh)."""

    name = "hinge"

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        return torch.relu(1 - beta * ((pc - pr) - (rc - rr)))


class IPO(PairwiseLoss):
    """IPO (Azar et al. 2023, Eq. 17): L = (h − 1/(2β))², on token-averaged log-probs as its authors specify."""

    name = "ipo"
    length_normalised = True

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        return ((pc - pr) - (rc - rr) - 1 / (2 * beta)) ** 2


class SPPOHard(PairwiseLoss):
    """SPPO with hard labels (Wu et al. 2024): L = (a − 1/(2β))² + (b + 1/(2β))², a = π_c − ρ_c, b = π_r − ρ_r."""

    name = "sppo_hard"

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        return (pc - rc - 1 / (2 * beta)) ** 2 + (pr - rr + 1 / (2 * beta)) ** 2


class NCAPair(PairwiseLoss):
    """NCA pairwise (Chen et al. 2024): L = −log σ(r_c) − ½ log σ(−r_c) − ½ log σ(−r_r)."""

    name = "nca_pair"

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        chosen, rejected = beta * (pc - rc), beta * (pr - rr)
        return -F.logsigmoid(chosen) - 0.5 * F.logsigmoid(-chosen) - 0.5 * F.logsigmoid(-rejected)


class BCOPair(PairwiseLoss):
    """BCO on pairs (Jung et al. 2024): L = −log σ(r_c − δ) − log σ(−(r_r − δ)), δ a running mean of the
    implicit rewards seen so far (updated by the objective, kept in its state)."""

    name = "bco_pair"

    def __init__(self) -> None:
        self.delta = 0.0
        self.count = 0

    def __call__(self, pc, pr, rc, rr, *, beta, label_smoothing=0.0):
        chosen, rejected = beta * (pc - rc), beta * (pr - rr)
        rewards = torch.cat([chosen, rejected]).detach()
        total = self.count + rewards.numel()
        self.delta = (self.delta * self.count + float(rewards.sum())) / total
        self.count = total
        return -F.logsigmoid(chosen - self.delta) - F.logsigmoid(-(rejected - self.delta))


DPO_LOSSES: dict[str, type[PairwiseLoss]] = {
    cls.name: cls for cls in (Sigmoid, SigmoidNorm, Robust, Hinge, IPO, SPPOHard, NCAPair, BCOPair)
}
