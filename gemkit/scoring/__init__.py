"""Candidate scoring: the inputs every scorer sees and what it returns."""
from gemkit.scoring.base import ScoreResult, ScoringInputs

__all__ = ["ScoreResult", "ScoringInputs"]
