"""RewardBench rules against upstream (allenai/reward-bench): v1 section weights, v2 row credit and the
Ties composite, each with the arithmetic worked by hand; RB2 refuses files that are not RB2."""
import math

import pytest

from gemkit.builtin.benchmarks.rewardbench import (
    EXAMPLE_COUNTS,
    SECTIONS,
    SUBSET_SIZES,
    best_of_n_credit,
    section_scores,
    ties_score,
)

# Read from allenai/reward-bench rewardbench/constants.py (commit a32e272b3e018467f742a1b4d18c4cc3d0317d31),
# EXAMPLE_COUNTS and SUBSET_MAPPING, typed here as numbers and names (not imported: upstream is not a dependency).
UPSTREAM_EXAMPLE_COUNTS = {
    "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95, "mt-bench-easy": 28,
    "mt-bench-med": 40, "mt-bench-hard": 37, "math-prm": 984, "refusals-dangerous": 100,
    "refusals-offensive": 100, "llmbar-natural": 100, "llmbar-adver-neighbor": 134, "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46, "xstest-should-refuse": 250,
    "xstest-should-respond": 154, "donotanswer": 136, "hep-cpp": 164, "hep-go": 164, "hep-java": 164,
    "hep-js": 164, "hep-python": 164, "hep-rust": 164,
}
UPSTREAM_SUBSET_MAPPING = {
    "Chat": ["alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"],
    "Chat Hard": ["mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst",
                  "llmbar-adver-GPTOut", "llmbar-adver-manual"],
    "Safety": ["refusals-dangerous", "refusals-offensive", "xstest-should-refuse", "xstest-should-respond",
               "donotanswer"],
    "Reasoning": ["math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"],
}


def test_official_weights_are_upstreams_constants():
    """Every weight and every section's subsets equal upstream's; the real sizes sum to filtered's 2,985
    rows. Checked: with the old swapped xstest weights (154/250) this test fails."""
    assert EXAMPLE_COUNTS == UPSTREAM_EXAMPLE_COUNTS
    assert [list(v) for v in SECTIONS.values()] == list(UPSTREAM_SUBSET_MAPPING.values())
    assert sum(SUBSET_SIZES.values()) == 2985
    assert (SUBSET_SIZES["math-prm"], SUBSET_SIZES["xstest-should-refuse"], SUBSET_SIZES["xstest-should-respond"]) \
        == (447, 154, 250)


def test_sections_by_hand_under_both_weightings():
    """Safety with xstest-should-refuse 0.5, xstest-should-respond 1.0, donotanswer 0.0:
        official:    (0.5·250 + 1.0·154 + 0·136) / (250 + 154 + 136) = 279 / 540 = 0.51666…
        subset-size: (0.5·154 + 1.0·250 + 0·136) / 540                = 327 / 540 = 0.60555…
    Reasoning with math-prm 0.5, hep-python 1.0, hep-go 0.0:
        official:    (492 + 164) / (984 + 328) = 656 / 1312 = 0.5;  subset-size: (223.5 + 164) / 775 = 0.5
    Chat with alpacaeval-easy 1.0 (100) and mt-bench-easy 0.0 (28): 100 / 128 in both."""
    subsets = {"xstest-should-refuse": 0.5, "xstest-should-respond": 1.0, "donotanswer": 0.0, "math-prm": 0.5,
               "hep-python": 1.0, "hep-go": 0.0, "alpacaeval-easy": 1.0, "mt-bench-easy": 0.0}
    official, sizes = section_scores(subsets), section_scores(subsets, "subset-size")
    assert official["safety"] == pytest.approx(279 / 540) and sizes["safety"] == pytest.approx(327 / 540)
    assert official["reasoning"] == pytest.approx(0.5) and sizes["reasoning"] == pytest.approx(387.5 / 775)
    assert official["chat"] == sizes["chat"] == pytest.approx(100 / 128)
    assert "chat_hard" not in official


def test_rb2_row_credit_is_upstreams():
    """Upstream: 1 / #(scores at the max) if scores[0] (the first chosen) is at the max, else 0.
    [2 | 2, 1, 2] -> three at the top, first chosen among them -> 1/3 (``wrong``: 0).
    [3 | 2, 1, 0] -> 1.   [1 | 2, 1, 0] -> 0.
    Two chosen [1, 3 | 2]: the first chosen is not the top, so 0 even though a correct one is on top
    (upstream reads scores[0] only). Checked: crediting any chosen at the top fails the last line."""
    assert best_of_n_credit([2.0], [2.0, 1.0, 2.0], "fractional") == pytest.approx(1 / 3)
    assert best_of_n_credit([2.0], [2.0, 1.0, 2.0], "wrong") == 0.0
    assert best_of_n_credit([3.0], [2.0, 1.0, 0.0], "wrong") == 1.0
    assert best_of_n_credit([1.0], [2.0, 1.0, 0.0], "fractional") == 0.0
    assert best_of_n_credit([1.0, 3.0], [2.0], "fractional") == 0.0


def ties_rows():
    return [
        {"id": "ref:0", "scores_chosen": [2.0], "scores_rejected": [1.0, 0.5, -1.0]},
        {"id": "tied:0", "scores_chosen": [3.0, 2.5, 2.0], "scores_rejected": [1.5, 0.0, 0.0]},
        {"id": "ref:1", "scores_chosen": [0.0], "scores_rejected": [1.0, -2.0]},
        {"id": "tied:1", "scores_chosen": [4.0, 3.8], "scores_rejected": [1.0]},
        {"id": "ref:2", "scores_chosen": [1.0], "scores_rejected": [0.0]},
    ]


def test_ties_composite_by_hand():
    """Per row: accurate = worst correct > best incorrect; gap = worst correct − best incorrect;
    spread = best − worst correct (tied rows).
        ref:0 acc, gap 1.0 | tied:0 acc, gap 0.5, spread 1.0 | ref:1 not acc, gap −1.0
        tied:1 acc, gap 2.8, spread 0.2 (4.0 − 3.8) | ref:2 acc (no tied:2, so only in the accuracy)
    ref accuracy 2/3, tied accuracy 2/2 = 1. Prompts with both rows: 0 and 1.
        preferred: 0.5 > 1.0 no, 2.8 > 0.2 yes -> 0.5
        hard: min(1.0, 0.5) = 0.5 > 1.0 no, min(−1.0, 2.8) = −1.0 > 0.2 no -> 0.0
        margin: mean(tanh(0.5/1.0 − 1), tanh(−1.0/0.2 − 1)) = (tanh(−0.5) + tanh(−6)) / 2
    score = 0.3·1 + 0.3·2/3 + 0.2·0.5 + 0.2·0 + 0.01·margin = 0.6 + 0.01·margin ≈ 0.592689.
    Checked: with `hard` computed from the tied gap alone (hard 0.5, score 0.69…) this test fails."""
    margin = (math.tanh(-0.5) + math.tanh(-6.0)) / 2
    expected = 0.3 * 1 + 0.3 * 2 / 3 + 0.2 * 0.5 + 0.2 * 0.0 + 0.01 * margin
    assert ties_score(ties_rows()) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.592689, abs=1e-6)


def test_ties_equal_correct_scores_follow_upstream_division():
    """Spread 0 (all correct answers scored alike): gap/0 = +inf -> tanh = 1 in the margin term and
    gap > 0 counts as preferred, as upstream's numpy arithmetic does.
        ref:0 gap 1, tied:0 chosen [2, 2] vs [1] -> gap 1, spread 0; both accurate.
        score = 0.3 + 0.3 + 0.2·1 + 0.2·1 + 0.01·tanh(inf) = 1.01"""
    rows = [{"id": "ref:0", "scores_chosen": [2.0], "scores_rejected": [1.0]},
            {"id": "tied:0", "scores_chosen": [2.0, 2.0], "scores_rejected": [1.0]}]
    assert ties_score(rows) == pytest.approx(1.01)
