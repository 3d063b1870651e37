"""Eq. 1 end to end from hand-built logits whose entropies are known exactly.

A logits row that is 0 on c tokens and −1e4 elsewhere is (in fp32) uniform over those c tokens, so
its entropy is H = ln c. Reasoning tokens get c = 1 (H = 0) except two forks with c = 8 and c = 4;
final-answer tokens get c = 2 (H = ln 2).
"""
import math

import pytest
import torch

from gemkit.builtin.entropy import EntropyConfig, EntropyScorer
from gemkit.builtin.mappings import NoOptions, RankMapping, SoftmaxConfig, SoftmaxMapping
from gemkit.errors import ConfigError
from gemkit.gem.advantages import AdvantageRule, advantages_from_scores
from gemkit.ops import token_entropies
from gemkit.scoring import ScoringInputs

TEXT = "Step 1: 6 × 7 = 42.\nStep 2: 42 + 8 = 50.\nFinal Answer: 50"
LN2, LN4, LN8 = math.log(2), math.log(4), math.log(8)


def uniform_logits(counts: list[int], vocab: int = 64) -> torch.Tensor:
    logits = torch.full((len(counts), vocab), -1e4)
    for row, c in enumerate(counts):
        logits[row, :c] = 0.0
    return logits


def build(tokenizer, text: str = TEXT):
    """Token ids of ``text``, the answer start a (first token after 'Final Answer:'), and inputs whose
    entropies are ln 8 at position 1, ln 4 at position 3, ln 2 on [a, n) and 0 elsewhere."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    n = len(ids)
    answer_start = next((i for i in range(n) if tokenizer.decode(ids[:i]).endswith("Final Answer:")), n)
    counts = [1] * n
    counts[1], counts[3] = 8, 4
    for t in range(answer_start, n):
        counts[t] = 2
    entropies = token_entropies(uniform_logits(counts))
    assert torch.allclose(entropies[[1, 3]], torch.tensor([LN8, LN4]), atol=1e-5)
    inputs = ScoringInputs(torch.tensor([ids]), torch.ones(1, n), entropies.unsqueeze(0), torch.zeros(1, n), None,
                           [text], tokenizer, 1)
    return ids, answer_start, inputs


def test_marker_span_exact_score(tokenizer):
    """SmolLM2 splits digits, so the 37 tokens end with " ", "5", "0": a = 34, final span = [34, 37),
    H_final = (0 + ln 2 + ln 2 + ln 2)/3 = ln 2 (all three have c = 2). Reasoning = 34 tokens,
    m = ⌈0.1·34⌉ = 4: top entropies ln 8, ln 4, 0, 0 → fork = 5 ln 2 / 4.
    S = −ln 2 + 1.0 · 5 ln 2 / 4 = ln 2 / 4 ≈ 0.173287."""
    ids, a, inputs = build(tokenizer)
    assert (a, len(ids)) == (34, 37)
    result = EntropyScorer(EntropyConfig()).score(inputs)
    assert result.final_span == [(34, 37)] and result.finished.tolist() == [True]
    assert tokenizer.decode(ids[34:]).strip() == "50"
    assert result.scores[0].item() == pytest.approx(LN2 / 4, abs=1e-5)
    assert result.details["h_final"][0].item() == pytest.approx(LN2, abs=1e-5)
    assert result.details["fork_entropy"][0].item() == pytest.approx(5 * LN2 / 4, abs=1e-5)


def test_tail_span_exact_score(tokenizer):
    """tail:0.1 of n = 37 → last ⌈3.7⌉ = 4 tokens [33, 37): ":" (H 0) and the three answer tokens (ln 2),
    H_final = 3 ln 2 / 4. λ = 0.5, top_m_count = 2 → fork = (ln 8 + ln 4)/2 = 2.5 ln 2.
    S = −0.75 ln 2 + 0.5 · 2.5 ln 2 = 0.5 ln 2 ≈ 0.346574."""
    _, _, inputs = build(tokenizer)
    result = EntropyScorer(EntropyConfig(span="tail:0.1", lam=0.5, top_m_count=2)).score(inputs)
    assert result.final_span == [(33, 37)]
    assert result.scores[0].item() == pytest.approx(0.5 * LN2, abs=1e-5)


def test_last_n_span_exact_score(tokenizer):
    """last:5 → [32, 37): H_final = 3 ln 2 / 5. ρ = 0.05 over 32 reasoning tokens → m = ⌈1.6⌉ = 2,
    fork = 2.5 ln 2. λ = 2: S = −0.6 ln 2 + 5 ln 2 = 4.4 ln 2 ≈ 3.049848."""
    _, _, inputs = build(tokenizer)
    result = EntropyScorer(EntropyConfig(span="last:5", lam=2.0, top_m_ratio=0.05)).score(inputs)
    assert result.final_span == [(32, 37)]
    assert result.scores[0].item() == pytest.approx(4.4 * LN2, abs=1e-5)


def test_unfinished_candidate_uses_fallback_and_is_flagged(tokenizer):
    """No marker (26 tokens) → fallback tail:0.5: final span [13, 26), all H 0 → H_final = 0. Reasoning
    13 tokens with the forks at 1 and 3, m = ⌈1.3⌉ = 2 → fork = (ln 8 + ln 4)/2 = 2.5 ln 2 = S."""
    text = "Step 1: 6 × 7 = 42, then 42 + 8 makes fifty in total here"
    ids, _, inputs = build(tokenizer, text)
    result = EntropyScorer(EntropyConfig(fallback="tail:0.5")).score(inputs)
    assert len(ids) == 26
    assert result.finished.tolist() == [False] and result.final_span == [(13, 26)]
    assert result.scores[0].item() == pytest.approx(2.5 * LN2, abs=1e-5)


def test_marker_with_nothing_after_it_is_unfinished(tokenizer):
    ids = tokenizer("Step 1: 2 + 2 = 4.\nFinal Answer:", add_special_tokens=False)["input_ids"]
    inputs = ScoringInputs(torch.tensor([ids]), torch.ones(1, len(ids)), torch.zeros(1, len(ids)),
                           torch.zeros(1, len(ids)), None, ["x"], tokenizer, 1)
    assert EntropyScorer(EntropyConfig()).score(inputs).finished.tolist() == [False]


def test_bad_span_options_are_rejected_with_the_choices():
    with pytest.raises(ConfigError, match="tail:<fraction"):
        EntropyConfig(span="tail:2")
    with pytest.raises(ConfigError, match="fallback"):
        EntropyConfig(fallback="marker")


def test_softmax_temperature_and_rank_ties():
    """softmax([0, 2 ln 3] / τ=2) = softmax([0, ln 3]) = (¼, ¾). Ranks of [2, 2, 5]: ties share rank ½,
    5 has rank 2; centred (r − 1)/2 → [−¼, −¼, ½]."""
    soft = SoftmaxMapping(SoftmaxConfig(tau=2.0))(torch.tensor([[0.0, 2 * math.log(3.0)]]))
    assert torch.allclose(soft, torch.tensor([[0.25, 0.75]]))
    ranks = RankMapping(NoOptions())(torch.tensor([[2.0, 2.0, 5.0]]))
    assert torch.allclose(ranks, torch.tensor([[-0.25, -0.25, 0.5]]))


def test_penalise_then_map_then_centre():
    """S = [1, 2, 3, 4], candidate 3 unfinished, penalty 2 → [1, 2, 1, 4]; identity; mean 2 →
    A = [−1, 0, −1, 2]. With scale_by_std: std = √(6/3) = √2 → A/√2."""
    scores = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    finished = torch.tensor([[True, True, False, True]])
    rule = AdvantageRule(unfinished="penalise", unfinished_penalty=2.0)
    rewards, keep, adv = advantages_from_scores(scores, finished, lambda s: s.clone(), rule)
    assert adv.tolist() == [[-1.0, 0.0, -1.0, 2.0]] and keep.tolist() == [[1.0] * 4]
    rule.scale_by_std = True
    _, _, scaled = advantages_from_scores(scores, finished, lambda s: s.clone(), rule)
    assert torch.allclose(scaled, torch.tensor([[-1.0, 0.0, -1.0, 2.0]]) / math.sqrt(2), atol=1e-5)
