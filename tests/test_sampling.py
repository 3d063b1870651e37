"""gemkit's token draw: the nucleus transformers' warpers keep, and the distribution they sample."""
import pytest
import torch
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from gemkit import sampling
from gemkit.sampling import NucleusSampler, draw


def reference_probs(logits: torch.Tensor, temperature: float, top_p: float, top_k: int | None) -> torch.Tensor:
    """transformers' warper chain (temperature → top-k → top-p) as a distribution."""
    scores = TemperatureLogitsWarper(temperature)(None, logits.clone())
    if top_k is not None:
        scores = TopKLogitsWarper(top_k)(None, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(None, scores)
    return scores.softmax(-1)


def empirical_probs(logits: torch.Tensor, draws: int, **options) -> torch.Tensor:
    rows = logits.expand(draws, -1)
    counts = torch.bincount(draw(rows, **options), minlength=logits.shape[-1]).float()
    return counts / draws


@pytest.mark.parametrize("options", [
    dict(temperature=0.9, top_p=0.95, top_k=None),
    dict(temperature=1.3, top_p=0.5, top_k=None),
    dict(temperature=0.7, top_p=1.0, top_k=None),
    dict(temperature=1.0, top_p=0.9, top_k=5),
])
def test_draws_follow_the_warped_distribution(options):
    torch.manual_seed(0)
    logits = torch.randn(1, 40) * 2
    expected = reference_probs(logits, **options)[0]
    got = empirical_probs(logits, 40_000, **options)
    assert not ((got > 0) & (expected == 0)).any()  # nothing outside the nucleus is ever drawn
    assert float((got - expected).abs().max()) < 0.012


def test_a_row_whose_candidates_miss_top_p_falls_back_to_the_whole_vocabulary(monkeypatch):
    """With only 8 candidates a flat distribution's nucleus lies outside them: the draw must
    still reach every nucleus token (and none outside it)."""
    monkeypatch.setattr(sampling, "CANDIDATES", 8)
    torch.manual_seed(1)
    logits = torch.randn(1, 64) * 0.3
    expected = reference_probs(logits, 1.0, 0.9, None)[0]
    got = empirical_probs(logits, 20_000, temperature=1.0, top_p=0.9, top_k=None)
    assert int((expected > 0).sum()) > 8
    assert torch.equal(got > 0, expected > 0)


def test_nucleus_matches_transformers_top_p_on_peaked_and_flat_rows():
    torch.manual_seed(2)
    for scale in (0.1, 1.0, 8.0):
        logits = torch.randn(6, 500) * scale
        for top_p in (0.3, 0.9, 0.99):
            kept = reference_probs(logits, 1.0, top_p, None) > 0
            probs, ids = logits.softmax(-1).sort(-1, descending=True)
            ours = torch.zeros_like(kept).scatter(1, ids, sampling.nucleus_keep(probs, top_p))
            assert torch.equal(ours, kept)


def test_processor_leaves_only_the_drawn_token_finite():
    torch.manual_seed(3)
    scores = torch.randn(3, 100)
    scores[:, 7] = float("-inf")  # e.g. EOS suppressed by an earlier processor
    out = NucleusSampler(temperature=0.9, top_p=0.95, top_k=None)(torch.zeros(3, 1, dtype=torch.long), scores)
    assert torch.equal(torch.isfinite(out).sum(-1), torch.ones(3, dtype=torch.long))
    assert not torch.isfinite(out[:, 7]).any()
