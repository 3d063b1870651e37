"""Report statistics, each checked against arithmetic worked out by hand."""
import math

import numpy as np
import pytest

from gemkit.report.stats import (
    bootstrap_ci,
    holm,
    mcnemar_exact,
    mean_std,
    paired_bootstrap_ci,
    paired_p_value,
    paired_test_name,
    sign_flip_test,
)


def test_mean_std_over_seeds():
    """(0.6, 0.7, 0.8): mean 0.7; squared deviations 0.01 + 0 + 0.01 = 0.02, / (3 − 1) = 0.01, √ = 0.1."""
    mean, std = mean_std([0.6, 0.7, 0.8])
    assert mean == pytest.approx(0.7) and std == pytest.approx(0.1)
    assert mean_std([0.5]) == (0.5, 0.0)


def test_mcnemar_exact_by_hand():
    """n10 = 3 (a right, b wrong), n01 = 1, n = 4 discordant; 6 concordant items are ignored.
    p = 2 · (C(4,0) + C(4,1)) / 2⁴ = 2 · 5/16 = 0.625."""
    a = [1, 1, 1, 0] + [1] * 3 + [0] * 3
    b = [0, 0, 0, 1] + [1] * 3 + [0] * 3
    assert mcnemar_exact(a, b) == pytest.approx(0.625)
    assert mcnemar_exact(b, a) == pytest.approx(0.625)
    """All 10 discordant items favour a: p = 2 · C(10,0) / 2¹⁰ = 2/1024."""
    assert mcnemar_exact([1] * 10, [0] * 10) == pytest.approx(2 / 1024)
    assert mcnemar_exact([1, 0], [1, 0]) == 1.0


def test_holm_by_hand():
    """p = (0.01, 0.04, 0.03, 0.005), m = 4. Sorted: 0.005, 0.01, 0.03, 0.04.
    step 1: 4 · 0.005 = 0.02;  step 2: 3 · 0.01 = 0.03;  step 3: 2 · 0.03 = 0.06;
    step 4: 1 · 0.04 = 0.04, but adjusted values never decrease: max(0.06, 0.04) = 0.06.
    Back in input order: (0.03, 0.06, 0.06, 0.02). Only the first and last stay below 0.05,
    while plain Bonferroni (× 4) would keep only 0.005 → 0.02."""
    assert [round(p, 10) for p in holm([0.01, 0.04, 0.03, 0.005])] == [0.03, 0.06, 0.06, 0.02]
    assert holm([0.6, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == []


def test_paired_test_finds_a_real_difference_and_not_identical_methods():
    """Binary: a is right on 40 items where b is wrong, b right on 5 where a is wrong → McNemar.
    Continuous: b = a − 0.05 + small noise on 40 items → sign-flip."""
    rng = np.random.default_rng(1)
    a = [1] * 40 + [0] * 5 + [1] * 30 + [0] * 25
    b = [0] * 40 + [1] * 5 + [1] * 30 + [0] * 25
    assert paired_test_name(a, b) == "mcnemar-exact"
    assert paired_p_value(a, b) < 0.05
    assert paired_p_value(a, list(a)) > 0.5
    x = rng.uniform(0, 1, 40)
    y = x - 0.05 + rng.normal(0, 0.01, 40)
    assert paired_test_name(x, y) == "sign-flip"
    assert paired_p_value(x, y) < 0.05
    assert paired_p_value(x, x) > 0.5
    swapped = np.where(np.arange(40) % 2 == 0, y, x), np.where(np.arange(40) % 2 == 0, x, y)
    assert sign_flip_test(*swapped) > 0.5  # the same gap, half the time in each direction: no effect


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = [1] * 70 + [0] * 30
    low, high = bootstrap_ci(values)
    assert bootstrap_ci(values) == (low, high)
    assert low < 0.7 < high and 0.05 < high - low < 0.25  # ±1.96·√(0.21/100) ≈ ±0.09
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_paired_bootstrap_removes_shared_item_difficulty():
    """b = a shifted down by exactly 0.1 on every item: every resample's mean difference is 0.1, so
    the paired CI is [0.1, 0.1] even though the values themselves spread from 0 to 1."""
    a = np.linspace(0.1, 1.0, 50)
    low, high = paired_bootstrap_ci(a, a - 0.1)
    assert low == pytest.approx(0.1) and high == pytest.approx(0.1)
