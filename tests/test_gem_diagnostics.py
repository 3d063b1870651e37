"""Scorer diagnostics (gemkit/gem/diagnostics.py) against values worked out by hand.

The shared example, four prompts (k = 2):

    P1  scores [2, 1]  correct [1, 0]   the score ranks right
    P2  scores [3, 0]  correct [0, 1]   the score ranks wrong
    P3  scores [1, 1]  correct [1, 0]   a tie
    P4  scores [0, 4]  correct [0, 0]   nothing right
"""
import math

import pytest
import torch

from gemkit.gem.diagnostics import auroc, best_of_k, diagnose, group_diagnostics, point_biserial

SCORES = [[2, 1], [3, 0], [1, 1], [0, 4]]
CORRECT = [[1, 0], [0, 1], [1, 0], [0, 0]]


def test_pooled_auroc_counts_wins_and_half_ties():
    """Correct scores {2, 0, 1}, wrong scores {1, 3, 1, 0, 4}: 15 pairs.
    2 beats 1, 1, 0 (3 wins); 0 ties 0 (½); 1 ties 1 and 1 (½ + ½) and beats 0 (1) → 2.
    AUROC = (3 + ½ + 2) / 15 = 5.5 / 15 = 0.36667.
    Checked: ranking by −score instead gives 0.63333 and fails."""
    flat_s = [v for g in SCORES for v in g]
    flat_c = [v for g in CORRECT for v in g]
    assert auroc(flat_s, flat_c) == pytest.approx(5.5 / 15)


def test_point_biserial_formula_by_hand():
    """M₁ = (2+0+1)/3 = 1, M₀ = (1+3+1+0+4)/5 = 1.8; mean 12/8 = 1.5, Σ(x−1.5)² = 14, s = √(14/8) = 1.32288;
    p = 3/8, √(pq) = √(15/64) = 0.48412; r = (1 − 1.8)/1.32288 · 0.48412 = −0.29277.
    It equals Pearson's r of score vs 0/1 label (numpy, an independent computation).
    Checked: swapping M₁ and M₀ flips the sign and fails."""
    flat_s = [v for g in SCORES for v in g]
    flat_c = [v for g in CORRECT for v in g]
    expected = (1 - 1.8) / math.sqrt(14 / 8) * math.sqrt(15 / 64)
    assert expected == pytest.approx(-0.29277, abs=1e-5)
    assert point_biserial(flat_s, flat_c) == pytest.approx(expected)
    import numpy as np

    assert point_biserial(flat_s, flat_c) == pytest.approx(float(np.corrcoef(flat_s, flat_c)[0, 1]))


def test_best_of_k_splits_ties():
    """P1 top score 2 is right → 1; P2 top 3 is wrong → 0; P3 tie of 1 and 1 → (1 + 0)/2 = ½.
    Checked: taking the first argmax instead gives 1 for P3 and fails."""
    assert [best_of_k(s, c) for s, c in zip(SCORES[:3], CORRECT[:3], strict=True)] == [1.0, 0.0, 0.5]


def test_diagnose_selection_accuracies_and_within_prompt_auroc():
    """best-of-k = (1 + 0 + ½ + 0)/4 = 0.375; random = (½ + ½ + ½ + 0)/4 = 0.375; oracle = 3/4.
    Within-prompt AUROC over the 3 mixed prompts (P4 has no right answer): (1 + 0 + ½)/3 = 0.5.
    n = 4 prompts, 8 candidates, 3 correct. Checked: an oracle by mean instead of max (0.375) fails."""
    found = diagnose(SCORES, CORRECT, resamples=500)
    assert (found.n_prompts, found.n_candidates, found.n_correct, found.n_mixed_prompts) == (4, 8, 3, 3)
    assert found.best_of_k_by_score == pytest.approx(0.375)
    assert found.random_choice == pytest.approx(0.375)
    assert found.oracle == pytest.approx(0.75)
    assert found.auroc_within == pytest.approx(0.5)
    assert found.auroc == pytest.approx(5.5 / 15)
    low, high = found.ci["oracle"]
    assert 0.0 <= low <= 0.75 <= high <= 1.0 and low < high
    assert found.undefined == {}
    assert found.metrics()["correct_mean"] == pytest.approx(3 / 8)


def test_undefined_when_every_candidate_is_right():
    """All 4 candidates right: AUROC and r_pb have no value (never a fake 0.5 or 0); the reason names n.
    best-of-k = random = oracle = 1. Checked: returning 0.5 for one class fails the None check."""
    found = diagnose([[0.1, 0.9], [0.3, 0.2]], [[1, 1], [1, 1]], resamples=100)
    assert found.auroc is None and found.point_biserial is None and found.auroc_within is None
    assert found.undefined["auroc"] == "all 4 candidates are correct"
    assert "auroc" not in found.metrics() and "point_biserial" not in found.metrics()
    assert (found.best_of_k_by_score, found.random_choice, found.oracle) == (1.0, 1.0, 1.0)
    assert auroc([1.0, 2.0], [0, 0]) is None
    assert point_biserial([1.0, 1.0], [0, 1]) is None  # equal scores: s = 0


def test_group_diagnostics_reads_b_by_k_tensors():
    """[2, 2] tensors P1, P2 of the shared example: correct_mean 2/4, best-of-k (1 + 0)/2, oracle 1;
    pooled AUROC parts: correct {2, 0} vs wrong {1, 3} → 2 beats 1 → U = 1 of 4 pairs (AUROC 0.25);
    within: P1 1.0 + P2 0.0 = 1.0 over 2 mixed prompts. P3 + P4 added: the tie adds ½, 0 ties 0 → ½, so
    U = 5.5 of 15 (as the pooled test). Checked: counting a tie as a win (U = 7.5) fails."""
    metrics = group_diagnostics(torch.tensor(SCORES[:2], dtype=torch.float), torch.tensor(CORRECT[:2]))
    assert metrics == pytest.approx({"diag/correct_mean": 0.5, "diag/best_of_k_by_score": 0.5, "diag/oracle": 1.0,
                                     "diag/auroc_wins": 1.0, "diag/auroc_pairs": 4.0, "diag/auroc_within_sum": 1.0,
                                     "diag/mixed_prompts": 2.0})
    everything = group_diagnostics(torch.tensor(SCORES, dtype=torch.float), torch.tensor(CORRECT))
    assert (everything["diag/auroc_wins"], everything["diag/auroc_pairs"]) == (5.5, 15.0)
    assert set(everything) == set(metrics)  # the same keys at every step (the engine averages them)


def test_diagnose_rejects_mismatched_groups():
    with pytest.raises(ValueError):
        diagnose([[1.0, 2.0]], [[1]])
