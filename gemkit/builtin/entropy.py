"""Built-in scorer ``entropy``: GEM's Cognitive Filtering score (Eq. 1)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

import gemkit
from gemkit.errors import ConfigError
from gemkit.gem.entropy_score import entropy_score
from gemkit.gem.spans import SpanRule, final_span
from gemkit.scoring import ScoreResult, ScoringInputs


@dataclass
class EntropyConfig:
    lam: float = field(default=1.0, metadata={"help": "λ, weight of the fork-entropy term."})
    top_m_ratio: float = field(default=0.1, metadata={"help": "ρ: m = ceil(ρ·n) fork tokens of the reasoning span."})
    top_m_count: int | None = field(default=None, metadata={"help": "A fixed m instead of ρ·n."})
    span: str = field(default="marker", metadata={"help": "Final-answer span: marker, tail:<fraction> or last:<n>."})
    fallback: str = field(default="tail:0.2", metadata={"help": "Span used for candidates with no marker."})

    def __post_init__(self) -> None:
        SpanRule.parse(self.span)
        if SpanRule.parse(self.fallback).kind == "marker":
            raise ConfigError("fallback must be tail:<fraction> or last:<n>, not marker")
        if not 0 < self.top_m_ratio <= 1:
            raise ConfigError(f"top_m_ratio must be in (0, 1], got {self.top_m_ratio}")
        if self.top_m_count is not None and self.top_m_count < 1:
            raise ConfigError(f"top_m_count must be >= 1, got {self.top_m_count}")


class EntropyScorer:
    """S = −H_final + λ · mean(top-m H_t) over the reasoning span (GEM Eq. 1), higher is better."""

    name = "entropy"
    description = "GEM Eq. 1: confident final answer (-H_final) plus exploratory forks (lambda * top-m entropy)."
    Config = EntropyConfig
    needs_logits = False

    def __init__(self, config: EntropyConfig):
        self.config = config
        self.rule, self.fallback = SpanRule.parse(config.span), SpanRule.parse(config.fallback)

    def score(self, inputs: ScoringInputs) -> ScoreResult:
        scores, h_finals, forks, finished, spans = [], [], [], [], []
        lengths = inputs.response_mask.sum(-1).long().tolist()
        for row, n in enumerate(lengths):
            ids = inputs.token_ids[row, :n].tolist()
            span, found = final_span(self.rule, self.fallback, inputs.tokenizer, ids)
            score, h_final, fork = entropy_score(inputs.token_entropies[row, :n], span, lam=self.config.lam,
                                                 top_m_ratio=self.config.top_m_ratio,
                                                 top_m_count=self.config.top_m_count)
            scores.append(score)
            h_finals.append(h_final)
            forks.append(fork)
            finished.append(found)
            spans.append(span)
        return ScoreResult(torch.tensor(scores), torch.tensor(finished), spans,
                           {"h_final": torch.tensor(h_finals), "fork_entropy": torch.tensor(forks)})


@gemkit.hookimpl
def register_scorers(register):
    register(EntropyScorer)
