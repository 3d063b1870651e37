"""Sample-efficiency intervals: the two-stage bootstrap over seeds and items
(:func:`gemkit.report.stats.hierarchical_bootstrap_ci`), its place in the analysis, and report.md's
"## Sample efficiency" section on a synthetic run directory."""
import json
import math

import numpy as np
import pytest

from gemkit.io import atomic_write_json
from gemkit.report.analysis import analyse
from gemkit.report.build import build_report
from gemkit.report.schema import load_run, write_cell
from gemkit.report.stats import bootstrap_ci, hierarchical_bootstrap_ci


def test_all_items_right_or_all_wrong_gives_a_point_interval():
    """Every item of every seed right: each resample's item means are 1, so the interval is [1, 1]
    (and [0, 0] when every item is wrong)."""
    assert hierarchical_bootstrap_ci([[1.0] * 20, [1.0] * 35, [1.0] * 5]) == (1.0, 1.0)
    assert hierarchical_bootstrap_ci([[0.0] * 20, [0.0] * 20]) == (0.0, 0.0)


def test_two_opposite_seeds_by_hand():
    """Seed A answers all 50 items right, seed B all wrong. Stage 2 cannot move either seed's mean,
    so a resample's statistic is (#A drawn)/2 ∈ {0, ½, 1} with probabilities ¼, ½, ¼ (two draws
    with replacement). The 2.5 % quantile is 0 and the 97.5 % one is 1: the interval is [0, 1],
    where a bootstrap over the 100 pooled items alone claims about ±0.1 around ½.
    Checked it can fail: with stage 1 dropped (every resample takes each seed once) the interval
    became [0.5, 0.5] and this test failed."""
    assert hierarchical_bootstrap_ci([[1.0] * 50, [0.0] * 50]) == (0.0, 1.0)
    low, high = bootstrap_ci([1.0] * 50 + [0.0] * 50)
    assert 0.35 < low < 0.5 < high < 0.65


def test_one_seed_is_the_plain_item_bootstrap():
    """One seed with 30 of 50 items right: stage 1 always draws that seed, so the interval is the
    percentile item bootstrap, here recomputed with numpy alone (20,000 resamples, another seed).
    Both are Monte Carlo percentiles of means on a grid of 1/50, so they agree to one item (0.02).
    Checked it can fail: with stage 2 dropped (each drawn seed's items not resampled) the
    interval became [0.6, 0.6] and this test failed."""
    items = np.array([1.0] * 30 + [0.0] * 20)
    rng = np.random.default_rng(123)
    means = items[rng.integers(0, items.size, (20_000, items.size))].mean(axis=1)
    expected = np.quantile(means, [0.025, 0.975])
    low, high = hierarchical_bootstrap_ci([items.tolist()])
    assert low == pytest.approx(expected[0], abs=0.0201) and high == pytest.approx(expected[1], abs=0.0201)
    assert 0.45 < low < 0.6 < high < 0.75  # ±1.96·√(0.24/50) ≈ ±0.136


def test_interval_contains_the_mean_narrows_with_items_and_is_seeded():
    """Three seeds at 60 %, 70 % and 65 % right. The estimate (0.6 + 0.7 + 0.65)/3 = 0.65 lies inside;
    ten times the items per seed (same rates) shrink the item part of the spread, so the interval
    is narrower; the same call gives the same interval."""
    def seeds(n: int) -> list[list[float]]:
        return [[1.0] * round(rate * n) + [0.0] * (n - round(rate * n)) for rate in (0.6, 0.7, 0.65)]

    low, high = hierarchical_bootstrap_ci(seeds(40))
    assert low < 0.65 < high
    wide, narrow = high - low, np.subtract(*hierarchical_bootstrap_ci(seeds(400))[::-1])
    assert narrow < 0.75 * wide
    assert hierarchical_bootstrap_ci(seeds(40)) == (low, high)
    assert all(math.isnan(v) for v in hierarchical_bootstrap_ci([]))
    assert all(math.isnan(v) for v in hierarchical_bootstrap_ci([[1.0], []]))


#: arithmetic items right per (method, shots) and seed 1, 2, 3, of N items
N = 40
RIGHT = {("dpo", 10): (20, 24, 22), ("dpo", 40): (28, 30, 26), ("sega", 10): (N, N, N), ("sega", 40): (N, N, N)}


def _cell(run_dir, method: str, shots: int, seed: int, right: int) -> None:
    """One cell with two benchmarks: ``arithmetic`` (its accuracy is the mean of its items) and
    ``calibration`` (ECE, whose items do not average to it)."""
    items = [{"id": f"q{i}", "correct": float(i < right)} for i in range(N)]
    calibration = [{"id": f"c{i}", "correct": 0.5, "score": 0.5} for i in range(10)]
    record = {"cell_id": f"{method}-s{shots}-seed{seed}", "method": method, "shots": shots, "seed": seed,
              "status": "ok", "error": None, "train": None, "benchmarks": {
                  "arithmetic": {"status": "ok", "metrics": {"accuracy": right / N}, "primary": "accuracy",
                                 "higher_is_better": {"accuracy": True}, "items": "items/arithmetic.jsonl"},
                  "calibration": {"status": "ok", "metrics": {"ece": 0.1}, "primary": "ece",
                                  "higher_is_better": {"ece": False}, "items": "items/calibration.jsonl"}}}
    write_cell(run_dir, record, items={"arithmetic": items, "calibration": calibration})


def _run(root, sizes: tuple[int, ...]):
    run = root / "run"
    atomic_write_json(run / "manifest.json", {"config": {"model": "random:tiny", "shots": list(sizes)}})
    for (method, shots), rights in RIGHT.items():
        if shots in sizes:
            for seed, right in zip((1, 2, 3), rights, strict=True):
                _cell(run, method, shots, seed, right)
    return run


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = _run(tmp_path_factory.mktemp("efficiency"), (10, 40))
    return run, build_report(run, run.parent / "report", baseline=None, formats=("md", "json"))


def test_analysis_stores_the_interval_of_each_point(report):
    """dpo at 10 pairs: seeds right on 20, 24, 22 of 40 items, so the point is 22/40 = 0.55 and its
    interval is the two-stage bootstrap of exactly those items; sega is always right: [1, 1]. The
    ECE column's items (all 0.5) do not average to its 0.1, so it gets no interval."""
    run, _ = report
    analysis = analyse(load_run(run), baseline=None)
    assert analysis.efficiency["arithmetic"]["dpo"][10] == pytest.approx([0.5, 0.6, 0.55])
    expected = hierarchical_bootstrap_ci([[float(i < r) for i in range(N)] for r in RIGHT[("dpo", 10)]])
    assert analysis.efficiency_ci["arithmetic"]["dpo"][10] == expected
    assert expected[0] < 0.55 < expected[1]
    assert analysis.efficiency_ci["arithmetic"]["sega"] == {10: (1.0, 1.0), 40: (1.0, 1.0)}
    assert analysis.efficiency_ci["calibration"]["dpo"] == {10: None, 40: None}


def test_markdown_section_and_json_hold_the_same_numbers(report):
    """report.md: one table per column, methods × sizes, "mean [low, high]" in % for accuracy and raw
    for ECE; table.json's ``efficiency`` holds the raw fractions. dpo@40: (28 + 30 + 26)/3/40 = 0.7.
    Checked it can fail: with the interval's bounds swapped in the markdown cell text this failed."""
    _, out = report
    md = (out / "report.md").read_text()
    section = md.split("## Sample efficiency\n", 1)[1].split("\n## ", 1)[0]
    assert "95% CI from a two-stage bootstrap" in section and "3 per point" in section
    points = {(p["column"], p["method"], p["shots"]): p for p in json.loads((out / "table.json").read_text())["efficiency"]}
    dpo = points[("arithmetic/accuracy", "dpo", 40)]
    assert dpo["mean"] == pytest.approx(0.7) and dpo["n_seeds"] == 3 and dpo["ci"][0] < 0.7 < dpo["ci"][1]
    def text(p: dict) -> str:
        return f"{100 * p['mean']:.1f} [{100 * p['ci'][0]:.1f}, {100 * p['ci'][1]:.1f}]"

    rows = section.splitlines()
    assert "| Method | 10 pairs | 40 pairs |" in rows
    dpo10 = points[("arithmetic/accuracy", "dpo", 10)]
    assert f"| DPO | {text(dpo10)} | {text(dpo)} |" in rows and text(dpo10).startswith("55.0 [")
    assert "| GEM (SEGA) | 100.0 [100.0, 100.0] | 100.0 [100.0, 100.0] |" in rows
    assert "| DPO | 0.10 [–] | 0.10 [–] |" in rows  # ECE: raw units, no interval of another quantity
    assert points[("calibration/ece", "dpo", 10)]["ci"] is None
    assert (out / "figures" / "data_efficiency_arithmetic.png").stat().st_size > 1000


def test_no_section_for_a_single_training_size(tmp_path):
    """Only 40 pairs: nothing to draw as a curve, so neither the section nor the json points exist."""
    run = _run(tmp_path, (40,))
    out = build_report(run, tmp_path / "report", baseline=None, formats=("md", "json"), with_figures=False)
    assert "## Sample efficiency" not in (out / "report.md").read_text()
    assert json.loads((out / "table.json").read_text())["efficiency"] == []
