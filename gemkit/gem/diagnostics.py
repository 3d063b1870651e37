"""Scorer diagnostics: does a self-score (GEM Eq. 1, or any scorer plugin) track answer correctness?

Input: for each of ``n`` prompts, its k candidates' scores ``s_ij`` and whether each is correct
``c_ij ∈ {0, 1}`` (checked against the gold answer). Higher scores are taken to mean "more likely
right", the direction SEGA rewards (Eq. 2 pushes up candidates with higher S).

- **AUROC** (pooled over all candidates): P(s⁺ > s⁻) + ½·P(s⁺ = s⁻) for a random correct candidate
  s⁺ and a random wrong one s⁻ (Mann–Whitney U / (n₁·n₀)); 0.5 is chance, 1 a perfect ranking.
  Undefined (None, never 0.5) when every candidate is right or every one is wrong.
- **Within-prompt AUROC**: the same statistic inside each prompt that has both a right and a wrong
  candidate, averaged over those prompts. It is what SEGA uses: its advantages compare candidates of
  one prompt only, so prompt difficulty (which the pooled AUROC mixes in) does not matter to it.
- **Point-biserial correlation**: r_pb = (M₁ − M₀) / s · √(p·q), M₁/M₀ the mean score of correct/
  wrong candidates, s the population standard deviation of all scores, p = n₁/n, q = 1 − p. It equals
  the Pearson correlation between the scores and the 0/1 correctness. Undefined when one class is
  empty or all scores are equal.
- **Best-of-k by score**: per prompt, the correctness of the highest-scoring candidate (ties at the
  top count as the mean correctness of the tied ones: the expected value of a random tie-break).
- **Random choice**: per prompt, the mean correctness of its candidates (expected accuracy of
  picking one uniformly at random).
- **Oracle (pass@k)**: per prompt, 1 if any candidate is correct.

The three accuracies are means over prompts with percentile-bootstrap 95 % intervals over prompts
(:func:`gemkit.report.stats.bootstrap_ci`, seeded). Selecting by the score helps when best-of-k
lies above random choice; the gap to the oracle is what a perfect scorer would add.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from gemkit.report.stats import bootstrap_ci


@dataclass
class ScorerDiagnostics:
    """The diagnostics of one set of scored, checked candidates (see the module docstring)."""

    n_prompts: int
    n_candidates: int
    n_correct: int
    n_mixed_prompts: int  # prompts with at least one right and one wrong candidate
    auroc: float | None
    auroc_within: float | None
    point_biserial: float | None
    best_of_k_by_score: float
    random_choice: float
    oracle: float
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    undefined: dict[str, str] = field(default_factory=dict)  # metric -> why it has no value

    def metrics(self) -> dict[str, float]:
        """The defined values as plain floats (undefined ones are left out, see ``undefined``)."""
        values = {"auroc": self.auroc, "auroc_within": self.auroc_within, "point_biserial": self.point_biserial,
                  "best_of_k_by_score": self.best_of_k_by_score, "random_choice": self.random_choice,
                  "oracle": self.oracle, "correct_mean": self.n_correct / self.n_candidates}
        return {k: float(v) for k, v in values.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ci"] = {k: list(v) for k, v in self.ci.items()}
        return data

    def table(self) -> str:
        """A small plain-text table: each value, its 95 % CI where it has one, or why it has none."""
        lines = [f"{'diagnostic':<34} {'value':>8}  95% CI",
                 f"{'-' * 34} {'-' * 8}  {'-' * 16}"]
        titles = {"auroc": "AUROC (pooled)", "auroc_within": f"AUROC within prompt ({self.n_mixed_prompts} mixed)",
                  "point_biserial": "point-biserial r", "best_of_k_by_score": "best-of-k accuracy by score",
                  "random_choice": "random-choice accuracy", "oracle": "oracle accuracy (pass@k)"}
        for key, title in titles.items():
            value = getattr(self, key)
            if value is None:
                lines.append(f"{title:<34} {'n/a':>8}  ({self.undefined.get(key, 'undefined')})")
                continue
            low, high = self.ci.get(key, (None, None))
            interval = f"[{low:.3f}, {high:.3f}]" if low is not None else ""
            lines.append(f"{title:<34} {value:>8.3f}  {interval}")
        lines.append(f"n = {self.n_prompts} prompts, {self.n_candidates} candidates, {self.n_correct} correct")
        return "\n".join(lines)


def auroc(scores: Sequence[float], correct: Sequence[float]) -> float | None:
    """Pooled AUROC of ``scores`` predicting ``correct`` (sklearn's ``roc_auc_score``); None when
    all candidates are right or all are wrong."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(correct, dtype=float)
    if labels.size == 0 or labels.min() == labels.max():
        return None
    return float(roc_auc_score(labels, np.asarray(scores, dtype=float)))


def point_biserial(scores: Sequence[float], correct: Sequence[float]) -> float | None:
    """r_pb = (M₁ − M₀)/s · √(p·q) with s the population std of the scores; None when undefined."""
    x, y = np.asarray(scores, dtype=float), np.asarray(correct, dtype=float) > 0.5
    n1, n = int(y.sum()), y.size
    spread = float(x.std()) if n else 0.0
    if n1 in (0, n) or spread == 0.0:
        return None
    p = n1 / n
    return float((x[y].mean() - x[~y].mean()) / spread * math.sqrt(p * (1 - p)))


def best_of_k(scores: Sequence[float], correct: Sequence[float]) -> float:
    """Correctness of the top-scoring candidate of one prompt; a tie at the top averages the tied."""
    x, y = np.asarray(scores, dtype=float), np.asarray(correct, dtype=float)
    top = x == x.max()
    return float(y[top].mean())


def diagnose(scores: Sequence[Sequence[float]], correct: Sequence[Sequence[float]], *, level: float = 0.95,
             resamples: int = 2000, seed: int = 0) -> ScorerDiagnostics:
    """All diagnostics of ``n`` prompts' candidates: ``scores[i][j]``, ``correct[i][j] ∈ {0, 1}``.

    Prompts may have different numbers of candidates (at least one each).
    """
    if not scores or len(scores) != len(correct) or any(
            len(s) != len(c) or not s for s, c in zip(scores, correct, strict=True)):
        raise ValueError("scores and correct must be non-empty, one list per prompt, of equal lengths")
    flat_s = [float(v) for group in scores for v in group]
    flat_c = [float(v) for group in correct for v in group]
    mixed = [(s, c) for s, c in zip(scores, correct, strict=True) if 0 < sum(c) < len(c)]
    within = [auroc(s, c) for s, c in mixed]
    per_prompt = {"best_of_k_by_score": [best_of_k(s, c) for s, c in zip(scores, correct, strict=True)],
                  "random_choice": [sum(c) / len(c) for c in correct],
                  "oracle": [float(max(c)) for c in correct]}
    n_correct = int(sum(flat_c))
    result = ScorerDiagnostics(
        n_prompts=len(scores), n_candidates=len(flat_s), n_correct=n_correct, n_mixed_prompts=len(mixed),
        auroc=auroc(flat_s, flat_c),
        auroc_within=float(np.mean(within)) if within else None,  # type: ignore[arg-type]
        point_biserial=point_biserial(flat_s, flat_c),
        **{k: float(np.mean(v)) for k, v in per_prompt.items()},
        ci={k: bootstrap_ci(v, level=level, resamples=resamples, seed=seed) for k, v in per_prompt.items()})
    one_class = (f"all {len(flat_c)} candidates are correct" if n_correct == len(flat_c)
                 else f"all {len(flat_c)} candidates are wrong" if n_correct == 0 else None)
    if result.auroc is None:
        result.undefined["auroc"] = one_class or "undefined"
    if result.point_biserial is None:
        result.undefined["point_biserial"] = one_class or "all scores are equal"
    if result.auroc_within is None:
        result.undefined["auroc_within"] = "no prompt has both a right and a wrong candidate"
    return result


def diagnose_rows(rows: Sequence[dict[str, Any]], *, seed: int = 0) -> ScorerDiagnostics:
    """:func:`diagnose` on per-candidate rows ``{prompt_id, score, correct}`` (candidates of one prompt
    grouped by ``prompt_id`` in first-seen order)."""
    groups: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        scores, correct = groups.setdefault(str(row["prompt_id"]), ([], []))
        scores.append(float(row["score"]))
        correct.append(float(row["correct"]))
    return diagnose([g[0] for g in groups.values()], [g[1] for g in groups.values()], seed=seed)


def auroc_parts(scores: Sequence[float], correct: Sequence[float]) -> tuple[float, float]:
    """``(U, n₁·n₀)``: the Mann–Whitney count of (right, wrong) pairs the score orders rightly (ties ½)
    and the number of such pairs; AUROC = U / (n₁·n₀) when there is at least one pair."""
    x, y = np.asarray(scores, dtype=float), np.asarray(correct, dtype=float) > 0.5
    right, wrong = x[y][:, None], x[~y][None, :]
    return float((right > wrong).sum() + 0.5 * (right == wrong).sum()), float(right.size * wrong.size)


def group_diagnostics(scores: torch.Tensor, correct: torch.Tensor) -> dict[str, float]:
    """Training-log summary of one group step, ``scores`` and ``correct`` ``[b, k]`` (no intervals).

    Every key is present at every step, so the engine's mean over micro-batches (and ranks) stays
    honest: ``diag/correct_mean``, ``diag/best_of_k_by_score``, ``diag/oracle`` (means over prompts),
    and the AUROC in parts — ``diag/auroc_wins`` (U) and ``diag/auroc_pairs`` (n₁·n₀) of the pooled
    AUROC, ``diag/auroc_within_sum`` (Σ per-prompt AUROC) and ``diag/mixed_prompts`` (how many
    prompts have a right and a wrong candidate). Means of both parts keep their ratio, so the
    step's AUROC is ``auroc_wins / auroc_pairs`` and the within-prompt one
    ``auroc_within_sum / mixed_prompts`` (undefined when the denominator is 0; see
    :func:`gemkit.report.diagnostics.with_step_auroc`)."""
    s, c = scores.detach().float().cpu().tolist(), correct.detach().float().cpu().tolist()
    wins, pairs = auroc_parts([v for row in s for v in row], [v for row in c for v in row])
    parts = [auroc_parts(a, b) for a, b in zip(s, c, strict=True) if 0 < sum(b) < len(b)]
    within = [u / n for u, n in parts]  # each prompt's AUROC, counted without sklearn (cheap every step)
    return {"diag/correct_mean": float(np.mean(c)),
            "diag/best_of_k_by_score": float(np.mean([best_of_k(a, b) for a, b in zip(s, c, strict=True)])),
            "diag/oracle": float(np.mean([max(b) for b in c])),
            "diag/auroc_wins": wins, "diag/auroc_pairs": pairs,
            "diag/auroc_within_sum": float(sum(within)), "diag/mixed_prompts": float(len(within))}
