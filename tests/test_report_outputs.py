"""The report of a synthetic run directory: every table, figure and the HTML page, FAILED cells,
significance marks from the paired tests, and loader errors that name the file and field."""
import csv
import json
import re

import pytest

from gemkit.errors import DataError
from gemkit.io import atomic_write_json
from gemkit.report.build import build_report
from gemkit.report.schema import load_run, write_cell

N_ITEMS = 100
SUBSETS = {"chat": 0.9, "chat-hard": 0.5, "safety": 0.7, "reasoning": 0.6}


def _items(n_correct: int, offset: int = 0) -> list[dict]:
    """Items 0..99; the n_correct items starting at ``offset`` (cyclically) are right."""
    return [{"id": f"q{i}", "correct": int((i - offset) % N_ITEMS < n_correct)} for i in range(N_ITEMS)]


def _cell(run_dir, method, shots, seed, gsm8k_right, *, failed=None, ece=0.1, log=True):
    cell_id = f"{method}-s{shots}-seed{seed}"
    if failed:
        record = {"cell_id": cell_id, "method": method, "shots": shots, "seed": seed, "status": "failed",
                  "error": failed, "train": None, "benchmarks": {}}
        return write_cell(run_dir, record)
    gsm8k = _items(gsm8k_right, offset=seed)
    pref = _items(60 + shots // 10)
    record = {
        "cell_id": cell_id, "method": method, "shots": shots, "seed": seed, "status": "ok", "error": None,
        "train": None if method == "base" else {"wall_s": 3.5, "peak_mem_mb": 800.0, "steps": 4,
                                                "log": "train_log.jsonl"},
        "wall_s": 5.0, "peak_mem_mb": 900.0,
        "benchmarks": {
            "gsm8k": {"status": "ok", "error": None, "metrics": {"accuracy": gsm8k_right / N_ITEMS},
                      "primary": "accuracy", "higher_is_better": {"accuracy": True}, "items": "items/gsm8k.jsonl"},
            "rewardbench": {"status": "ok", "error": None, "metrics": {"accuracy": (60 + shots // 10) / N_ITEMS},
                            "primary": "accuracy", "higher_is_better": {"accuracy": True},
                            "items": "items/rewardbench.jsonl", "subsets": SUBSETS},
            "calibration": {"status": "ok", "error": None, "metrics": {"ece": ece}, "primary": "ece",
                            "higher_is_better": {"ece": False}, "items": "items/calibration.jsonl"},
        },
    }
    train_log = [{"step": s, "loss": 1.0 / s, "score_mean": 0.1 * s, "h_final_mean": 2.0 - 0.1 * s,
                  "response_length": 40 + s} for s in range(1, 5)] if method != "base" and log else None
    calibration = [{"id": f"c{i}", "correct": 0.1 * (i % 7), "score": 0.5} for i in range(30)]
    return write_cell(run_dir, record, items={"gsm8k": gsm8k, "rewardbench": pref, "calibration": calibration},
                      train_log=train_log)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """base; sft (seed 2 failed); dpo and sega at 50 and 100 shots, seeds 1 and 2. On gsm8k sega
    answers 80 of 100 items at 100 shots, dpo 50: a real difference. Calibration ECE is lower-better."""
    run = tmp_path_factory.mktemp("synthetic") / "run"
    atomic_write_json(run / "manifest.json", {
        "gemkit_version": "0.1.0", "git_commit": "abc123", "packages": {"torch": "2.13"},
        "hardware": {"cpu_threads": 2}, "config": {"model": "random:tiny", "train": "builtin:arithmetic",
                                                   "shots": [50, 100], "seeds": [1, 2], "generator": "vllm"},
        "started": "2026-01-01T00:00:00", "finished": "2026-01-01T00:10:00"})
    _cell(run, "base", 0, 0, 30, ece=0.3)
    _cell(run, "sft", 100, 1, 40)
    _cell(run, "sft", 100, 2, 0, failed="RuntimeError: CUDA out of memory")
    for seed in (1, 2):
        for shots in (50, 100):
            _cell(run, "dpo", shots, seed, 45 + shots // 20, ece=0.2)
            _cell(run, "sega", shots, seed, 70 + shots // 10, ece=0.15)
    return run


@pytest.fixture(scope="module")
def report(run_dir):
    return build_report(run_dir, run_dir.parent / "report", baseline="dpo@100")


def test_every_table_figure_and_the_html_are_written(report):
    out = report
    for name in ("report.md", "table.tex", "table.csv", "table.json", "report.html"):
        assert (out / name).stat().st_size > 100, name
    for stem in ("scores", "training_curves", "data_efficiency_gsm8k", "subsets_rewardbench"):
        for suffix in (".png", ".pdf"):
            assert (out / "figures" / f"{stem}{suffix}").stat().st_size > 1000, stem + suffix
    page = (out / "report.html").read_text()
    pngs = sorted((out / "figures").glob("*.png"))
    assert page.count("src='data:image/png;base64,") == len(pngs) >= 5
    assert not re.search(r"""(src|href)=['"](?!data:)""", page), "the page must not link anything"
    assert "abc123" in page and "<table>" in page
    # the engine of the run's generative benchmarks, from the manifest (checked it can fail: the header
    # reading config["model"] in its place failed this line)
    assert "· generator `vllm`" in (out / "report.md").read_text().splitlines()[2]


def test_failed_cell_shows_failed_never_zero(report):
    out = report
    md = (out / "report.md").read_text()
    sft_row = next(line for line in md.splitlines() if line.startswith("| Supervised (SFT) (100 pairs)"))
    assert sft_row.count("FAILED (RuntimeError: CUDA out of memory)") == 3
    assert "0.0" not in sft_row
    assert "FAILED (RuntimeError: CUDA out of memory)" in (out / "table.tex").read_text()
    assert "FAILED (RuntimeError: CUDA out of memory)" in (out / "report.html").read_text()
    rows = [r for r in csv.DictReader((out / "table.csv").open()) if r["method"] == "sft@100"]
    assert rows and all(r["status"] == "failed" and r["mean"] == "" for r in rows if r["column"] != "Avg.")


def test_real_difference_is_marked_and_tests_are_recorded(report):
    """sega@100 vs dpo@100 on gsm8k: 80 vs 50 correct of 100 per seed, seeds paired with seeds;
    the discordant items all favour sega, so McNemar's p is tiny and survives Holm (m = 3)."""
    out = report
    data = json.loads((out / "table.json").read_text())
    test = next(t for t in data["tests"] if t["method"] == "sega@100" and t["column"] == "gsm8k/accuracy")
    assert test["test"] == "mcnemar-exact" and test["n"] == 200
    assert test["diff"] == pytest.approx(0.30) and test["p_holm"] < 1e-6 and test["significant"]
    assert test["ci"][0] > 0.2 and test["ci"][1] < 0.4
    md = (out / "report.md").read_text()
    sega_row = next(line for line in md.splitlines() if line.startswith("| GEM (SEGA) (100 pairs)"))
    assert "**80.0 ± 0.0†**" in sega_row
    cell = next(r for r in data["rows"] if r["method"] == "sega@100" and r["column"] == "gsm8k/accuracy")
    assert cell["mean"] == pytest.approx(0.80) and cell["n_seeds"] == 2 and cell["rank"] == 1


def test_lower_is_better_column_and_row_order(report):
    out = report
    data = json.loads((out / "table.json").read_text())
    assert data["methods"][0] == "base" and data["methods"][-1] == "sega@100"
    ranks = {r["method"]: r["rank"] for r in data["rows"] if r["column"] == "calibration/ece"}
    assert ranks["sega@50"] == ranks["sega@100"] == 1 and ranks["dpo@50"] == 2 and ranks["base"] == 3
    assert "Avg." not in data["columns"]  # a lower-is-better column makes an average meaningless
    latex = (out / "table.tex").read_text()
    assert r"calibration ece $\downarrow$" in latex and r"\textbf{15.0" not in latex
    assert latex.count(r"\textbf{0.15 $\pm$ 0.00}") == 2 and r"\underline{0.20 $\pm$ 0.00}" in latex


def test_only_requested_formats(run_dir, tmp_path):
    """Without md or html nothing shows a figure, so none is drawn."""
    out = build_report(run_dir, tmp_path / "report", formats=("tex", "csv"))
    assert sorted(p.name for p in out.iterdir()) == ["table.csv", "table.tex"]


def test_loader_names_file_and_field(tmp_path):
    cell = tmp_path / "run" / "cells" / "x"
    cell.mkdir(parents=True)
    (cell / "result.json").write_text(json.dumps({"cell_id": "x", "method": "dpo", "status": "done"}))
    with pytest.raises(DataError, match=r"x/result.json: field 'status': must be one of"):
        load_run(tmp_path / "run")
    (cell / "result.json").write_text(json.dumps({"cell_id": "x", "method": "dpo", "status": "ok", "benchmarks": {
        "gsm8k": {"status": "ok", "metrics": {"accuracy": 0.5}, "primary": "acc"}}}))
    with pytest.raises(DataError, match=r"benchmarks.gsm8k.primary.*'acc' not among metrics \['accuracy'\]"):
        load_run(tmp_path / "run")
