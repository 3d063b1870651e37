"""The report's "Scorer diagnostics" section from a synthetic run: base (before) and SEGA (after), an
undefined AUROC shown with its reason, a failed cell as FAILED, and no diagnostics column in the
results table (it is not an accuracy with paired tests)."""
import json

from gemkit.io import atomic_write_json
from gemkit.report.build import build_report
from gemkit.report.schema import write_cell


def _diag(auroc, best, n_correct, undefined=None):
    metrics = {"best_of_k_by_score": best, "random_choice": 0.25, "oracle": 0.5, "correct_mean": n_correct / 8}
    if auroc is not None:
        metrics["auroc"] = auroc
    return {"status": "ok", "error": None, "metrics": metrics, "primary": "best_of_k_by_score",
            "higher_is_better": {k: True for k in metrics}, "items": "items/scorer-diagnostics.jsonl",
            "conventions": {"kind": "scorer-diagnostics", "scorer": "entropy", "k": 2, "check": "final-answer",
                            "source": "arithmetic",
                            "diagnostics": {"n_candidates": 8, "n_correct": n_correct,
                                            "ci": {"best_of_k_by_score": [0.0, 1.0]},
                                            "undefined": undefined or {}}}}


def _cell(run, method, diag=None, failed=None):
    record = {"cell_id": f"{method}-s8-seed0", "method": method, "shots": 8, "seed": 0,
              "status": "failed" if failed else "ok", "error": failed, "train": None, "benchmarks": {}}
    if not failed:
        record["benchmarks"] = {
            "arithmetic": {"status": "ok", "error": None, "metrics": {"accuracy": 0.5}, "primary": "accuracy",
                           "higher_is_better": {"accuracy": True}, "items": "items/arithmetic.jsonl"},
            "scorer-diagnostics": diag}
    items = {"arithmetic": [{"id": f"q{i}", "correct": i % 2} for i in range(10)],
             "scorer-diagnostics": [{"id": "p0", "scores": [1.0, 0.0], "correct_k": [1.0, 0.0]}]}
    write_cell(run, record, items=None if failed else items)


def test_section_shows_before_and_after_with_reasons(tmp_path):
    """base: AUROC undefined (all 8 candidates wrong) → 'n/a (all 8 candidates are wrong)';
    SEGA: AUROC 0.625 → '0.625', best-of-k 0.75 → '75.0 [0.0, 100.0]' (in %, with its CI); GRPO failed → FAILED.
    The results table has the arithmetic column only."""
    run = tmp_path / "run"
    atomic_write_json(run / "manifest.json", {"config": {"model": "random:tiny"}})
    _cell(run, "base", _diag(None, 0.0, 0, {"auroc": "all 8 candidates are wrong"}))
    _cell(run, "sega", _diag(0.625, 0.75, 3))
    _cell(run, "grpo", failed="boom")
    out = build_report(run, formats=("md", "json"), with_figures=False)
    text = (out / "report.md").read_text()
    section = text.split("## Scorer diagnostics")[1].split("## Cells")[0]
    base = next(line for line in section.splitlines() if line.startswith("| Base"))
    sega = next(line for line in section.splitlines() if line.startswith("| GEM"))
    assert "n/a (all 8 candidates are wrong)" in base and base.endswith("| 0 of 8 |")
    assert "| 0.625 |" in sega and "75.0 [0.0, 100.0]" in sega and sega.endswith("| 3 of 8 |")
    assert any("FAILED" in line for line in section.splitlines() if "GRPO" in line)
    results = text.split("## Results")[1].split("##")[0]
    assert "scorer" not in results.lower()
    table = json.loads((out / "table.json").read_text())
    assert not any("scorer-diagnostics" in json.dumps(c) for c in table.get("columns", []))


def test_no_section_without_diagnostics(tmp_path):
    run = tmp_path / "run"
    record = {"cell_id": "base-s0-seed0", "method": "base", "shots": 0, "seed": 0, "status": "ok", "error": None,
              "train": None, "benchmarks": {"arithmetic": {"status": "ok", "metrics": {"accuracy": 0.5},
                                                           "primary": "accuracy", "higher_is_better": {"accuracy": True}}}}
    write_cell(run, record, items={"arithmetic": [{"id": "q", "correct": 1}]})
    out = build_report(run, formats=("md",), with_figures=False)
    assert "Scorer diagnostics" not in (out / "report.md").read_text()


def test_step_auroc_from_its_logged_parts():
    """U = 3 of 4 pairs → 0.75; a step with no (right, wrong) pair gets no AUROC (not 0.5, not 0).
    Checked: dividing by (pairs + 1) gives 0.6 and fails."""
    from gemkit.report.diagnostics import with_step_auroc

    rows = with_step_auroc([{"step": 1, "diag/auroc_wins": 3.0, "diag/auroc_pairs": 4.0},
                            {"step": 2, "diag/auroc_wins": 0.0, "diag/auroc_pairs": 0.0}, {"step": 3, "loss": 1.0}])
    assert rows[0]["diag/auroc"] == 0.75 and "diag/auroc" not in rows[1] and "diag/auroc" not in rows[2]
