"""The bench grid on the tiny model: every output of a two-method grid, kill + resume equal to an
unbroken run with no duplicated rows, failed cells recorded while the grid goes on."""
import json

import pytest
from _tiny_bench import tiny_bench_config as _config

from gemkit.errors import TrainingError
from gemkit.report.build import build_report
from gemkit.report.schema import load_run
from gemkit.results import load_cells
from gemkit.runner.bench import WORK, run_bench


class Killed(Exception):
    pass


def _results(run_dir):
    """Everything a report is built from, minus timings: metrics and item rows per cell."""
    return {r.cell_id: {name: (b.metrics, (run_dir / "cells" / r.cell_id / b.items).read_text())
                        for name, b in r.benchmarks.items()} for r in load_cells(run_dir)}


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    return run_bench(_config(tmp_path_factory.mktemp("grid") / "run"), progress=False)


def test_two_method_grid_writes_every_table_figure_and_the_html(unbroken):
    report = build_report(unbroken)
    for name in ("report.md", "report.html", "table.tex", "table.csv", "table.json"):
        assert (report / name).stat().st_size > 0, name
    for stem in ("scores", "training_curves"):
        assert (report / "figures" / f"{stem}.png").is_file() and (report / "figures" / f"{stem}.pdf").is_file()
    assert "<img" in (report / "report.html").read_text()
    run = load_run(unbroken)
    assert sorted(c.method for c in run.cells) == ["base", "dpo", "sega"] and all(c.ok for c in run.cells)
    manifest = json.loads((unbroken / "manifest.json").read_text())
    assert manifest["packages"]["torch"] and manifest["git_commit"] and manifest["finished"]
    assert manifest["hardware"]["cpu_threads"] >= 1 and manifest["seeds"] == [0]
    for cell in manifest["cells"].values():
        assert cell["status"] == "ok" and cell["wall_s"] > 0 and cell["peak_mem_mb"] > 0
    trained = [c for c in run.cells if c.method != "base"]
    assert all(c.train.steps == 1 and c.train_log() for c in trained)
    assert all(list((c.directory / "train" / "tb").glob("events.out.tfevents.*")) for c in trained)
    assert not (unbroken / WORK).exists()
    table = (report / "report.md").read_text()
    assert "| DPO |" in table and "| GEM (SEGA) |" in table and "| Base model |" in table


def test_kill_then_resume_equals_the_unbroken_run(unbroken, tmp_path):
    out = tmp_path / "run"

    def kill_after_first_cell(record):
        raise Killed

    with pytest.raises(Killed):
        run_bench(_config(out), on_cell_done=kill_after_first_cell, progress=False)
    assert len(load_cells(out)) == 1
    with pytest.raises(Exception, match="--resume"):
        run_bench(_config(out), progress=False)
    run_bench(_config(out), resume=True, progress=False)
    assert _results(out) == _results(unbroken)
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["cells"]) == sorted(r.cell_id for r in load_cells(out)) and len(manifest["cells"]) == 3
    for cell in (out / "cells").iterdir():
        for items in (cell / "items").glob("*.jsonl"):
            ids = [json.loads(line)["id"] for line in items.read_text().splitlines()]
            assert len(ids) == len(set(ids)) == 3, items


def test_failing_cell_is_recorded_and_the_grid_goes_on(tmp_path, monkeypatch):
    """ipo's training raises (a forced non-finite loss); the base cell still finishes and the report
    shows the failure, never a number."""
    import gemkit.train as train_module

    def diverges(*args, **kwargs):
        raise TrainingError("non-finite loss (nan) at step 1 (batch ids: p0); last good checkpoint: none")

    monkeypatch.setattr(train_module, "train", diverges)
    out = run_bench(_config(tmp_path / "run", methods=["ipo"], method_options={}, benchmarks=["arithmetic-pref"],
                            benchmark_options={}), progress=False)
    cells = {r.method: r for r in load_cells(out)}
    assert cells["base"].status == "ok" and cells["ipo"].status == "failed"
    assert "non-finite loss" in cells["ipo"].error
    report = build_report(out, formats=("md",), with_figures=False)
    row = next(line for line in (report / "report.md").read_text().splitlines() if line.startswith("| IPO |"))
    assert "FAILED (" in row and "non-finite loss" in row
