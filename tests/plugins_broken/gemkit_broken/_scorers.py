"""Scorer classes shared by the modules of this distribution."""
from dataclasses import dataclass

import torch

from gemkit.scoring import ScoreResult


@dataclass
class NoOptions:
    pass


class LengthScorer:
    """Score = number of response tokens."""

    name = "good_len"
    description = "Number of response tokens (test plugin)."
    Config = NoOptions
    needs_logits = False

    def __init__(self, config=None):
        self.config = config

    def score(self, inputs):
        lengths = inputs.response_mask.sum(-1).float()
        return ScoreResult(scores=lengths, finished=torch.ones_like(lengths, dtype=torch.bool))


class ClashingEntropy(LengthScorer):
    name = "entropy"
    description = "Tries to shadow the built-in entropy scorer."


class RaisingScorer(LengthScorer):
    name = "flaky"
    description = "Raises inside score()."

    def score(self, inputs):
        raise ValueError("flaky scorer exploded on purpose")
