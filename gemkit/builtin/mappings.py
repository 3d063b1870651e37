"""Built-in reward mappings r = f(S), applied within each group of k candidates (``[b, k] -> [b, k]``)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

import gemkit
from gemkit.errors import ConfigError


@dataclass
class NoOptions:
    pass


@dataclass
class SoftmaxConfig:
    tau: float = field(default=1.0, metadata={"help": "τ, the temperature in r_i = softmax(S/τ)_i over the group."})

    def __post_init__(self) -> None:
        if self.tau <= 0:
            raise ConfigError(f"softmax tau must be > 0, got {self.tau}")


class IdentityMapping:
    """r_i = S_i (the official code's choice)."""

    name = "identity"
    description = "Reward equals score: r_i = S_i."
    Config = NoOptions

    def __init__(self, config: NoOptions):
        self.config = config

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        return scores.clone()


class SoftmaxMapping:
    """r_i = exp(S_i/τ) / Σ_j exp(S_j/τ) within the group (the pre-release code's default, τ exposed)."""

    name = "softmax"
    description = "Reward is the group softmax of scores with temperature tau."
    Config = SoftmaxConfig

    def __init__(self, config: SoftmaxConfig):
        self.config = config

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.softmax(scores / self.config.tau, dim=-1)


class RankMapping:
    """Centred ranks: r_i = (rank_i − (k−1)/2) / (k−1), ties share their mean rank; in [−½, ½].

    A stand-in for the paper's undocumented rank aggregation; insensitive to the scores' scale.
    """

    name = "rank"
    description = "Reward is the centred rank of the score in its group (ties share the mean rank)."
    Config = NoOptions

    def __init__(self, config: NoOptions):
        self.config = config

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        k = scores.shape[-1]
        if k == 1:
            return torch.zeros_like(scores)
        below = (scores.unsqueeze(-1) > scores.unsqueeze(-2)).sum(-1).float()
        equal = (scores.unsqueeze(-1) == scores.unsqueeze(-2)).sum(-1).float()
        ranks = below + (equal - 1) / 2
        return (ranks - (k - 1) / 2) / (k - 1)


@gemkit.hookimpl
def register_mappings(register):
    register(IdentityMapping)
    register(SoftmaxMapping)
    register(RankMapping)
