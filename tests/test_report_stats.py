"""Report statistics, each checked against arithmetic worked out by hand."""
import math

import numpy as np
import pytest

from gemkit.report.stats import (
    bootstrap_ci,
    holm,
    mcnemar_exact,
    mde_mcnemar,
    mde_paired_mean,
    mean_std,
    paired_bootstrap_ci,
    paired_mde,
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


def test_mde_mcnemar_by_hand_and_its_equation():
    """At power ½ (z_{1−β} = 0) the equation n·δ² = (z_{1−α/2}·√ψ)² gives δ = 1.95996 · √0.25 / √100
    = 0.0980 for n = 100, ψ = 0.25. At power 0.8 (z = 0.84162), n = 150, ψ = 0.2: by hand
    δ = 0.1015 gives 150 · 0.1015² = 1.545 and (1.95996 · 0.44721 + 0.84162 · √(0.2 − 0.0103))² =
    (0.87652 + 0.36657)² = 1.545. Four times the items halve δ (nearly: √(ψ − δ²) grows a little)."""
    assert mde_mcnemar(100, 0.25, power=0.5) == pytest.approx(0.0980, abs=1e-4)
    assert mde_mcnemar(150, 0.2) == pytest.approx(0.1015, abs=2e-4)
    assert mde_mcnemar(600, 0.2) == pytest.approx(0.1015 / 2, rel=0.05)
    assert mde_mcnemar(150, 0.2, alpha=0.025) > mde_mcnemar(150, 0.2)  # Holm's stricter level needs more
    assert math.isnan(mde_mcnemar(150, 0.0))
    assert mde_mcnemar(3, 0.01) == pytest.approx(0.1)  # not even δ = √ψ is detectable: capped there


def test_mde_mcnemar_is_detected_with_80_percent_power_in_simulation():
    """Simulate n = 200 paired items with discordance ψ = 0.2 and the true difference δ = MDE:
    P(a right, b wrong) = (ψ + δ)/2, P(a wrong, b right) = (ψ − δ)/2. The exact McNemar test at
    α = 0.05 should reject in about 80% of 600 runs (a bit fewer: the exact test is conservative).
    Checked: with the z_{1−β} term's sign flipped the MDE shrinks to 0.041 and the power to 20%,
    and this test fails."""
    n, psi = 200, 0.2
    delta = mde_mcnemar(n, psi)
    rng = np.random.default_rng(0)
    rejected = 0
    for _ in range(600):
        kind = rng.choice(3, size=n, p=[(psi + delta) / 2, (psi - delta) / 2, 1 - psi])
        a, b = (kind == 0).astype(float), (kind == 1).astype(float)
        rejected += mcnemar_exact(a, b) < 0.05
    assert 0.7 < rejected / 600 < 0.88


def test_paired_mde_picks_the_binary_or_the_continuous_formula():
    """0/1 items: 20 of 100 differ, so ψ̂ = 0.2 → mde_mcnemar(100, 0.2). Continuous: dᵢ = ±0.1
    alternating, s_d = 0.1 · √(100/99) = 0.10050, δ = (1.95996 + 0.84162) · 0.10050 / √100 = 0.02816."""
    a = [1.0] * 15 + [0.0] * 5 + [1.0] * 80
    b = [0.0] * 15 + [1.0] * 5 + [1.0] * 80
    assert paired_mde(a, b) == pytest.approx(mde_mcnemar(100, 0.2))
    x = np.full(100, 0.5)
    y = x + np.tile([0.1, -0.1], 50)
    assert paired_mde(x, y) == pytest.approx(0.02816, abs=1e-5)
    assert mde_paired_mean(100, 0.1005) == pytest.approx(0.02816, abs=1e-4)
