"""Statistics for comparing methods: pure functions, seeded, numpy only.

Conventions (also in docs/metrics.md): seeds give the spread of a method (mean ± sample std);
items give the uncertainty of one score (bootstrap CI), seeds and items together that of a point
of a data-efficiency curve (two-stage bootstrap), and items the power of a paired comparison
(two methods answered the same items, so we test their per-item differences).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds.

    x̄ = (1/n) Σ xᵢ,   s = √( Σ (xᵢ − x̄)² / (n − 1) ),   s = 0 for a single seed.
    """
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def bootstrap_ci(values: Sequence[float], *, level: float = 0.95, resamples: int = 2000, seed: int = 0
                 ) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of per-item values.

    Draw B resamples of the n items with replacement, x*_b; the interval is the (α/2, 1 − α/2)
    quantiles of {mean(x*_b)}_{b=1..B}, with α = 1 − level. Seeded, so a report is reproducible.
    """
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = array[rng.integers(0, array.size, (resamples, array.size))].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def hierarchical_bootstrap_ci(per_seed: Sequence[Sequence[float]], *, level: float = 0.95, resamples: int = 2000,
                              seed: int = 0) -> tuple[float, float]:
    """Two-stage (hierarchical) percentile bootstrap CI of the mean over seeds of per-item means.

    Data: S seeds (training runs), seed s with per-item values x_{s,1..n_s}; the estimate is
    θ̂ = (1/S) Σ_s mean(x_s). One resample b:

      1. draw S seeds s*_1..s*_S from the S with replacement (the training run's variance);
      2. for each draw k, draw n_{s*_k} items of that seed with replacement, x*_k (the finite
         test set's variance); a seed drawn twice gets two independent item draws;
      3. θ*_b = (1/S) Σ_k mean(x*_k).

    The interval is the (α/2, 1 − α/2) quantiles of {θ*_b}_{b=1..B}, α = 1 − level (multistage
    resampling, Davison & Hinkley 1997, §3.8). It is slightly conservative: the spread of the seed
    means resampled in stage 1 already holds some item noise, which stage 2 adds again. With one
    seed it is the plain item bootstrap (:func:`bootstrap_ci`); with S identical seeds whose items
    all agree (all 0 or all 1) it is [θ̂, θ̂]. Seeded, so a report is reproducible. NaN when there is
    no seed or a seed has no items.
    """
    groups = [np.asarray(values, dtype=float) for values in per_seed]
    if not groups or any(g.size == 0 for g in groups):
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(groups), (resamples, len(groups)))
    item_means = np.empty((resamples, len(groups)))
    for s, values in enumerate(groups):
        rows, slots = np.nonzero(drawn == s)
        chunk = max(1, 2_000_000 // values.size)  # bounds the index array at ~16 MB for large test sets
        for start in range(0, rows.size, chunk):
            picks = rng.integers(0, values.size, (min(chunk, rows.size - start), values.size))
            item_means[rows[start:start + chunk], slots[start:start + chunk]] = values[picks].mean(axis=1)
    estimates = item_means.mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(estimates, alpha)), float(np.quantile(estimates, 1 - alpha))


def paired_bootstrap_ci(a: Sequence[float], b: Sequence[float], *, level: float = 0.95, resamples: int = 2000,
                        seed: int = 0) -> tuple[float, float]:
    """CI of mean(a − b) on shared items: resample item *indices* once and take both methods' values
    at them, i.e. bootstrap dᵢ = aᵢ − bᵢ. Pairing removes the item-difficulty variance both share."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return bootstrap_ci(d, level=level, resamples=resamples, seed=seed)  # type: ignore[arg-type]


def mcnemar_exact(a: Sequence[float], b: Sequence[float]) -> float:
    """Exact two-sided McNemar test for paired 0/1 outcomes.

    n₁₀ = items a got right and b wrong, n₀₁ = the reverse, n = n₁₀ + n₀₁ (concordant items carry
    no information). Under H₀ each discordant item favours a with probability ½, so
    n₁₀ ~ Binomial(n, ½) and  p = min(1, 2 · Σ_{i=0}^{min(n₁₀, n₀₁)} C(n, i) / 2ⁿ);  p = 1 when n = 0.
    """
    x, y = np.asarray(a) > 0.5, np.asarray(b) > 0.5
    n10, n01 = int((x & ~y).sum()), int((~x & y).sum())
    n = n10 + n01
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(n10, n01) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def sign_flip_test(a: Sequence[float], b: Sequence[float], *, resamples: int = 5000, seed: int = 0) -> float:
    """Paired permutation (sign-flip) test for continuous per-item values.

    dᵢ = aᵢ − bᵢ. Under H₀ (exchangeable methods) each dᵢ is as likely to be −dᵢ, so with random signs
    εᵢ ∈ {±1}:  p = (1 + #{b : |mean(ε_b · d)| ≥ |mean(d)|}) / (B + 1)   (the +1 keeps p > 0 and exact
    under Monte Carlo). All-zero differences give p = 1.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0 or not d.any():
        return 1.0
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(resamples, d.size))
    null = np.abs((signs * d).mean(axis=1))
    return float((1 + (null >= abs(d.mean()) - 1e-12).sum()) / (resamples + 1))


def is_binary(*arrays: Sequence[float]) -> bool:
    values = np.concatenate([np.asarray(x, dtype=float).ravel() for x in arrays])
    return bool(np.isin(values, (0.0, 1.0)).all())


def paired_test_name(a: Sequence[float], b: Sequence[float]) -> str:
    return "mcnemar-exact" if is_binary(a, b) else "sign-flip"


def paired_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """Exact McNemar when every item value is 0/1, the sign-flip permutation test otherwise."""
    return mcnemar_exact(a, b) if is_binary(a, b) else sign_flip_test(a, b)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (family-wise error control across benchmarks).

    Sort ascending p₍₁₎ ≤ … ≤ p₍ₘ₎; p'₍ⱼ₎ = max_{i ≤ j} min(1, (m − i + 1) · p₍ᵢ₎), returned in the
    input order. Rejecting p' < α is the step-down Holm procedure at level α.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def mde_mcnemar(n: int, discordance: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable effect of a paired 0/1 comparison (McNemar, normal approximation; Connor 1987).

    With n shared items, discordant proportion ψ = P(a ≠ b) and difference δ = P(a=1,b=0) − P(a=0,b=1),
    the test at two-sided level α has power 1 − β when

        n · δ² = ( z_{1−α/2} · √ψ + z_{1−β} · √(ψ − δ²) )²,

    solved here for the smallest such δ (0 < δ ≤ √ψ; the right side falls as δ grows, so bisection
    finds the one root). Returns NaN when ψ = 0 (no item differs, so no effect size is defined) and
    √ψ when even δ = √ψ is not detectable with n items (then nothing smaller is either).
    """
    if n < 1 or discordance <= 0:
        return math.nan
    z = NormalDist()
    za, zb = z.inv_cdf(1 - alpha / 2), z.inv_cdf(power)

    def gap(delta: float) -> float:
        return n * delta ** 2 - (za * math.sqrt(discordance) + zb * math.sqrt(max(0.0, discordance - delta ** 2))) ** 2

    low, high = 0.0, math.sqrt(min(1.0, discordance))
    if gap(high) < 0:
        return high
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if gap(middle) < 0 else (low, middle)
    return high


def mde_paired_mean(n: int, sd: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable mean paired difference for continuous items: δ = (z_{1−α/2} + z_{1−β}) · s_d / √n."""
    if n < 1:
        return math.nan
    z = NormalDist()
    return (z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * sd / math.sqrt(n)


def paired_mde(a: Sequence[float], b: Sequence[float], *, alpha: float = 0.05, power: float = 0.8) -> float:
    """MDE of the paired test :func:`paired_p_value` picks, at the comparison's own spread: the observed
    discordance ψ̂ = mean(aᵢ ≠ bᵢ) for 0/1 items, the sample std of dᵢ = aᵢ − bᵢ otherwise."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if is_binary(x, y):
        return mde_mcnemar(x.size, float((x != y).mean()) if x.size else 0.0, alpha=alpha, power=power)
    d = x - y
    return mde_paired_mean(d.size, float(d.std(ddof=1)) if d.size > 1 else math.nan, alpha=alpha, power=power)
