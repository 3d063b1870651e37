"""The scorer-diagnostics benchmark inside a bench run on the tiny model: it runs on the base cell
(before training) and the SEGA cell (after), the report shows its section and not a results column,
and SEGA's train log on builtin:arithmetic (records with gold answers) carries the diag/* keys."""
import json

from _tiny_bench import tiny_bench_config

from gemkit.report.build import build_report
from gemkit.runner.bench import run_bench


def test_bench_runs_diagnostics_on_every_cell_and_reports_them(tmp_path):
    """Every diag/* key at every step with 0 <= value (fractions <= 1, wins <= pairs)."""
    config = tiny_bench_config(tmp_path / "run", methods=["sega"], steps=2, benchmarks=["arithmetic", "scorer-diagnostics"],
                               benchmark_options={"arithmetic": {"max_new_tokens": 6},
                                                  "scorer-diagnostics": {"k": 2, "max_new_tokens": 5}})
    run_dir = run_bench(config, progress=False)
    records = {r.name.split("-")[0]: json.loads((r / "result.json").read_text()) for r in (run_dir / "cells").iterdir()}
    assert set(records) == {"base", "sega"}
    for record in records.values():
        outcome = record["benchmarks"]["scorer-diagnostics"]
        assert outcome["status"] == "ok" and outcome["conventions"]["kind"] == "scorer-diagnostics"
        assert outcome["conventions"]["diagnostics"]["n_candidates"] == 3 * 2  # limit 3 prompts × k 2
    log = [json.loads(line) for line in (next((run_dir / "cells").glob("sega-*")) / "train_log.jsonl").open()]
    steps = [row for row in log if "loss" in row]
    assert len(steps) == 2
    for row in steps:
        assert 0 <= row["diag/correct_mean"] <= 1 and 0 <= row["diag/oracle"] <= 1
        assert 0 <= row["diag/auroc_wins"] <= row["diag/auroc_pairs"]
    text = (build_report(run_dir, formats=("md",), with_figures=False) / "report.md").read_text()
    assert "## Scorer diagnostics" in text
    section = text.split("## Scorer diagnostics")[1].split("## Cells")[0]
    assert "| Base model |" in section and "| GEM (SEGA) |" in section
    assert "Scorer" not in text.split("## Results")[1].split("## ")[0]
