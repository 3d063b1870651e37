"""Statistics for method comparisons on shared items (seeded, pure functions)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1; 0 for a single value) over seeds."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def bootstrap_ci(values: Sequence[float], *, level: float = 0.95, resamples: int = 2000, seed: int = 0
                 ) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of per-item values."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = array[rng.integers(0, array.size, (resamples, array.size))].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def paired_bootstrap_ci(a: Sequence[float], b: Sequence[float], **kwargs: float) -> tuple[float, float]:
    """CI of mean(a − b) over the same items, resampling items (not the two lists independently)."""
    return bootstrap_ci(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), **kwargs)  # type: ignore[arg-type]


def mcnemar_exact(a: Sequence[float], b: Sequence[float]) -> float:
    """Exact two-sided McNemar test for paired 0/1 outcomes.

    With n01 items right only under b and n10 right only under a, n = n01 + n10, under H0 the
    discordant split is Binomial(n, ½): p = min(1, 2 · Σ_{i ≤ min(n01, n10)} C(n, i) / 2ⁿ).
    """
    x, y = np.asarray(a) > 0.5, np.asarray(b) > 0.5
    n10, n01 = int((x & ~y).sum()), int((~x & y).sum())
    n = n10 + n01
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(n10, n01) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def sign_flip_test(a: Sequence[float], b: Sequence[float], *, resamples: int = 5000, seed: int = 0) -> float:
    """Paired permutation test: p = P(|mean(±dᵢ)| ≥ |mean(d)|) with random signs, d = a − b."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if not d.any():
        return 1.0
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(resamples, d.size))
    null = np.abs((signs * d).mean(axis=1))
    return float((1 + (null >= abs(d.mean()) - 1e-12).sum()) / (resamples + 1))


def paired_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """McNemar for binary items, sign-flip permutation otherwise."""
    values = np.concatenate([np.asarray(a, dtype=float), np.asarray(b, dtype=float)])
    binary = bool(np.isin(values, (0.0, 1.0)).all())
    return mcnemar_exact(a, b) if binary else sign_flip_test(a, b)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values: sort ascending, p'(i) = max_{j≤i} min(1, (m − j + 1)·p(j))."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
