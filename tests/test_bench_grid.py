"""The bench grid on the tiny model: every output written, failures recorded, kill + resume exact."""
import json

import pytest

from gemkit.errors import ConfigError, TrainingError
from gemkit.report.build import build_report
from gemkit.results import load_cells
from gemkit.runner.bench import BenchConfig, run_bench


def _config(out, **overrides):
    base = dict(methods=["sega", "dpo"], model="random:tiny", steps=1, batch_size=2, lora_r=4, limit=3, out=str(out),
                benchmark_options={"arithmetic": {"max_new_tokens": 6}},
                method_options={"sega": {"k": 2, "max_new_tokens": 6}}, device="cpu", include_sft=False)
    base.update(overrides)
    return BenchConfig(**base)


class Killed(Exception):
    pass


def _metrics(run_dir):
    return {r.cell_id: {n: b.metrics for n, b in r.benchmarks.items()} for r in load_cells(run_dir)}


def test_two_method_grid_writes_every_output(tmp_path):
    out = run_bench(_config(tmp_path / "run"))
    report = build_report(out)
    for name in ("report.md", "report.html", "table.tex", "table.csv", "table.json", "figures/scores.png",
                 "figures/scores.pdf", "figures/training_curves.png"):
        assert (report / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["cells"]) == 3 and manifest["packages"]["torch"] and "finished" in manifest
    assert "dpo" in (report / "report.md").read_text() and "<img" in (report / "report.html").read_text()


def test_kill_then_resume_matches_unbroken_run(tmp_path):
    unbroken = run_bench(_config(tmp_path / "a"))

    def kill_after_first(record):
        raise Killed

    with pytest.raises(Killed):
        run_bench(_config(tmp_path / "b"), on_cell_done=kill_after_first)
    assert len(load_cells(tmp_path / "b")) == 1
    with pytest.raises(ConfigError, match="--resume"):
        run_bench(_config(tmp_path / "b"))
    resumed = run_bench(_config(tmp_path / "b"), resume=True)
    assert _metrics(unbroken) == _metrics(resumed)
    assert len(load_cells(resumed)) == 3
    for cell in (resumed / "cells").iterdir():
        ids = [json.loads(line)["id"] for line in (cell / "items" / "arithmetic-pref.jsonl").read_text().splitlines()]
        assert len(ids) == len(set(ids)) == 3


def test_failing_cell_is_recorded_and_shown_as_failed(tmp_path, monkeypatch):
    """A cell whose training raises (here a non-finite loss, forced) is recorded as failed and the
    report says FAILED, never a number. (Data that cannot fit max_length now stops the run before
    it starts: tests/test_runner_lengths.py.)"""
    import gemkit.train as train_module

    def diverges(*args, **kwargs):
        raise TrainingError("non-finite loss (nan) at step 1 (batch ids: p0); last good checkpoint: none")

    monkeypatch.setattr(train_module, "train", diverges)
    out = run_bench(_config(tmp_path / "run", methods=["dpo"], method_options={"dpo": {"loss": "ipo"}},
                            benchmarks=["arithmetic-pref"], train="builtin:arithmetic?n=2", shots=[2], steps=1,
                            batch_size=4))
    failed = [r for r in load_cells(out) if r.status == "failed"]
    assert failed and "non-finite loss" in failed[0].error
    assert "FAILED" in (build_report(out) / "report.md").read_text()


def test_unknown_names_are_reported_together_before_any_model_loads(tmp_path):
    with pytest.raises(ConfigError) as info:
        run_bench(_config(tmp_path / "run", methods=["dpx"], benchmarks=["arithmatic"]))
    assert "dpx" in str(info.value) and "arithmatic" in str(info.value)


def test_bench_trains_sega_with_a_third_party_scorer(tmp_path):
    """`gemkit bench --methods sega --scorer selfcertainty` (the plugin `make test` installs)."""
    from gemkit.cli import main
    from gemkit.registry import registry

    if "selfcertainty" not in registry("scorer"):
        pytest.skip("gemkit-selfcertainty is not installed (make setup installs it)")
    code = main(["bench", "--methods", "sega", "--scorer", "selfcertainty", "--model", "random:tiny", "--steps", "1",
                 "--limit", "2", "--lora-r", "4", "--benchmarks", "arithmetic-pref", "--no-base", "--device", "cpu",
                 "--out", str(tmp_path / "run")])
    records = load_cells(tmp_path / "run")
    assert code == 0 and records[0].status == "ok"
    assert records[0].config["options"]["scorer"] == "selfcertainty"
