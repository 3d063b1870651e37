"""The SFT model in a bench run: trained once per (shots, seed), its own row, and mt-bench's baseline
for every other cell of the same (shots, seed)."""
import json

import pytest
from test_runner_ray import torch_threads

from gemkit.report.build import build_report
from gemkit.results import Baseline, load_cells
from gemkit.runner.bench import BenchConfig, plan_cells, run_bench
from gemkit.runner.devices import threads_per_worker


def _config(out, assets, **overrides):
    options = dict(methods=["dpo"], benchmarks=["mt-bench"], model="random:tiny", train="builtin:arithmetic?n=8",
                   shots=[4], steps=1, batch_size=2, lora_r=4, limit=2, out=str(out), device="cpu",
                   benchmark_options={"mt-bench": {"data": str(assets / "benchmarks" / "mt_bench.jsonl"),
                                                   "max_new_tokens": 3, "judge": "local",
                                                   "judge_options": {"model": "random:tiny", "device": "cpu"}}},
                   include_sft=False)  # only mt-bench's baseline asks for the SFT cell here
    options.update(overrides)
    return BenchConfig(**options)


def test_default_grid_plans_an_sft_row_that_no_cell_compares_against():
    """The default grid has an SFT row (include_sft), but its benchmarks (arithmetic, arithmetic-pref)
    compare against nothing; include_sft=False leaves base, sega, dpo."""
    cells = plan_cells(BenchConfig(), "data")
    assert [c.method for c in cells] == ["base", "sft", "sega", "dpo"] and all(c.baseline_cell is None for c in cells)
    assert [c.method for c in plan_cells(BenchConfig(include_sft=False), "data")] == ["base", "sega", "dpo"]


def test_sft_is_planned_once_per_shots_and_seed(assets):
    """2 shots × 2 seeds: 4 SFT cells, listed before the methods; each dpo/ipo cell names the SFT cell of
    its own (shots, seed); sft given as a method too is still planned once per (shots, seed)."""
    config = _config("unused", assets, methods=["sft", "dpo", "ipo"], shots=[2, 4], seeds=[0, 1])
    cells = plan_cells(config, "data")
    assert [c.method for c in cells] == ["base"] + ["sft"] * 4 + ["dpo"] * 4 + ["ipo"] * 4
    sft = {(c.shots, c.seed): c.cell_id for c in cells if c.method == "sft"}
    for cell in cells[5:]:
        assert cell.baseline_cell == sft[cell.shots, cell.seed]
    assert config._benchmark_options("mt-bench")["baseline"] == "sft"  # the bench default


def test_include_sft_adds_the_row_without_a_baseline():
    cells = plan_cells(BenchConfig(include_sft=True), "data")
    assert [c.method for c in cells] == ["base", "sft", "sega", "dpo"] and all(c.baseline_cell is None for c in cells)


def test_explicit_baseline_needs_no_sft_cell(assets):
    config = _config("unused", assets)
    config.benchmark_options["mt-bench"]["baseline"] = "base"
    assert [c.method for c in plan_cells(config, "data")] == ["base", "dpo"]


def _results(run_dir):
    """Per cell: status, metrics and the per-item rows of every benchmark (timings left out)."""
    return {r.cell_id: {name: (b.status, b.metrics, b.items and (run_dir / "cells" / r.cell_id / b.items).read_text())
                        for name, b in r.benchmarks.items()} for r in load_cells(run_dir)}


def test_mt_bench_compares_every_cell_with_the_shared_sft_model(tmp_path, assets, ray_local):
    """base, sft, dpo on the mt-bench fixture (2 questions, local judge on the tiny model).

    - dpo's baseline answers are the SFT cell's own answers, item by item: its checkpoint was the baseline;
    - the SFT cell against itself: greedy answers are identical, so the judge sees the same pair in both
      orders and returns the same letter twice (A,A or B,B: a tie) or tie, for each of the 2 × 2 judged turns:
      0 wins, 0 losses, 4 ties, win rate (0 + ½·4) / 4 = 0.5;
    - base is shared by every (shots, seed), so it has no SFT baseline and says so (failed, never a number);
    - the report has an SFT row (50.0 %) and shows the base model's mt-bench as FAILED;
    - on two CPU workers dpo waits for the SFT cell, and every result equals the serial run's."""
    with torch_threads(threads_per_worker(2)):
        out = run_bench(_config(tmp_path / "serial", assets), progress=False)
    cells = {r.method: r for r in load_cells(out)}
    assert sorted(cells) == ["base", "dpo", "sft"] and cells["sft"].train.steps == 1
    sft_id = cells["sft"].cell_id
    assert cells["dpo"].config["baseline_cell"] == sft_id
    assert cells["dpo"].baselines == cells["sft"].baselines == {"mt-bench": Baseline("sft", sft_id)}
    assert cells["dpo"].benchmarks["mt-bench"].conventions["baseline"] == f"sft (cell {sft_id})"
    sft_items = cells["sft"].items("mt-bench")
    dpo_items = cells["dpo"].items("mt-bench")
    # one row per judged turn: 2 questions x 2 turns
    assert [r["baseline_answer"] for r in dpo_items] == [r["answer"] for r in sft_items] and len(sft_items) == 4
    assert all(r["answer"] == r["baseline_answer"] and r["outcome"] == "tie" for r in sft_items)
    sft_metrics = cells["sft"].benchmarks["mt-bench"].metrics
    assert sft_metrics["win_rate"] == 0.5 and sft_metrics["win_rate_strict"] == 0.0
    base = cells["base"].benchmarks["mt-bench"]
    assert base.status == "failed" and "base cell is shared" in base.error
    rows = {}  # first table of the report: the results, one row per method
    for line in (build_report(out, formats=("md",), with_figures=False) / "report.md").read_text().splitlines():
        if line.startswith("| "):
            rows.setdefault(line.split("|")[1].strip(), line)
    assert "Supervised (SFT)" in rows and "50.0" in rows["Supervised (SFT)"] and "FAILED (" in rows["Base model"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shared_cells"] == {"base": cells["base"].cell_id, "sft": {"shots=4,seed=0": sft_id},
                                        "sft_baseline_for": ["mt-bench"]}
    parallel = run_bench(_config(tmp_path / "parallel", assets, device="auto", devices=["cpu", "cpu"]),
                         progress=False)
    assert _results(parallel) == _results(out)


def test_baseline_sft_outside_a_bench_run_says_what_to_pass(assets):
    """`gemkit eval --benchmark mt-bench --set baseline=sft` has no SFT cell to fill it in."""
    from gemkit.builtin.benchmarks.mt_bench import MTBench, MTBenchConfig
    from gemkit.errors import ConfigError

    adapter = MTBench(MTBenchConfig(data=str(assets / "benchmarks" / "mt_bench.jsonl"), baseline="sft"))
    with pytest.raises(ConfigError, match="filled in by gemkit bench .* pass the SFT checkpoint directory"):
        adapter.baseline_answers(None, adapter.load())
