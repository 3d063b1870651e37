"""From scores to SEGA advantages within each group of k candidates: penalise/drop, trim, pair, centre.

Shapes: ``[b, k]`` (b prompts, k candidates each). Dropped candidates get advantage 0, so they
neither pull nor push the policy; the loss still divides by k (Eq. 2's 1/k).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from gemkit.errors import ConfigError


@dataclass
class AdvantageRule:
    """How a group's scores become advantages (defaults: the paper's plain centring)."""

    unfinished: Literal["keep", "penalise", "drop"] = field(
        default="keep", metadata={"help": "Candidates without a Final Answer marker: keep, penalise or drop."})
    unfinished_penalty: float = field(default=1.0, metadata={"help": "Subtracted from the score with unfinished=penalise."})
    trim_bottom: int = field(default=0, metadata={"help": "Drop this many lowest-scoring candidates per group."})
    pair_top_bottom: bool = field(default=False, metadata={"help": "Keep only the best and worst candidate per group."})
    scale_by_std: bool = field(default=False, metadata={"help": "Divide A by the group std (official code); paper: off."})
    std_eps: float = field(default=1e-6, metadata={"help": "ε added to the group std before dividing (scale_by_std)."})

    def __post_init__(self) -> None:
        if self.unfinished not in ("keep", "penalise", "drop"):
            raise ConfigError(f"unfinished must be keep, penalise or drop, got {self.unfinished!r}")
        if self.trim_bottom < 0:
            raise ConfigError(f"trim_bottom must be >= 0, got {self.trim_bottom}")


def keep_mask(scores: torch.Tensor, finished: torch.Tensor, rule: Any) -> torch.Tensor:
    """``[b, k]`` 1 for candidates that enter the group, after drop, bottom-trimming and top/bottom pairing.

    ``rule`` has ``unfinished``, ``trim_bottom`` and ``pair_top_bottom`` (an AdvantageRule or a config).
    Trimming removes the ``trim_bottom`` lowest scores among the candidates still kept.
    """
    keep = torch.ones_like(scores)
    if rule.unfinished == "drop":
        keep = keep * finished.float()
    if rule.trim_bottom:
        lowest = scores.masked_fill(keep == 0, float("inf")).topk(rule.trim_bottom, dim=-1, largest=False).indices
        keep = keep.scatter(-1, lowest, 0.0)
    if rule.pair_top_bottom and scores.shape[-1] > 2:
        best = scores.masked_fill(keep == 0, -float("inf")).argmax(-1, keepdim=True)
        worst = scores.masked_fill(keep == 0, float("inf")).argmin(-1, keepdim=True)
        keep = torch.zeros_like(keep).scatter(-1, best, 1.0).scatter(-1, worst, 1.0) * keep
    return keep


def group_advantages(rewards: torch.Tensor, keep: torch.Tensor, *, scale_by_std: bool, eps: float = 1e-6) -> torch.Tensor:
    """A_i = r_i − r̄ with r̄ the mean over kept candidates (GEM Eq. 2); 0 for dropped ones.

    With ``scale_by_std`` the centred values are divided by (unbiased std over kept + eps), the
    official code's z-scored form; a group whose std is at most eps (equal scores, k=1) stays at 0.
    """
    count = keep.sum(-1, keepdim=True).clamp_min(1.0)
    mean = (rewards * keep).sum(-1, keepdim=True) / count
    centred = (rewards - mean) * keep
    if scale_by_std:
        std = ((centred ** 2).sum(-1, keepdim=True) / (count - 1).clamp_min(1.0)).sqrt()
        centred = torch.where(std > eps, centred / (std + eps), centred)
    return centred


def advantages_from_scores(scores: torch.Tensor, finished: torch.Tensor, mapping: Any, rule: AdvantageRule
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rewards, keep, advantages)``, all ``[b, k]`` and detached.

    The unfinished penalty is applied to S before the mapping r = f(S), so it is on the score's scale.
    """
    scores = scores.detach().float()
    if rule.unfinished == "penalise":
        scores = scores - rule.unfinished_penalty * (~finished.bool()).float()
    rewards = mapping(scores).detach().float()
    keep = keep_mask(scores, finished.bool(), rule)
    return rewards, keep, group_advantages(rewards, keep, scale_by_std=rule.scale_by_std,
                                           eps=rule.std_eps)
