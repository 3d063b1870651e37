"""`gemkit bench --devices`: cells in parallel worker processes give the serial run's results; bad
device lists are ConfigErrors that say what was expected."""
import json
import os
from contextlib import contextmanager

import pytest
import torch
from _tiny_bench import tiny_bench_config as _config

from gemkit.cli import build_parser
from gemkit.cli.bench import resolve
from gemkit.errors import ConfigError
from gemkit.runner.bench import WORK, BenchConfig, Cell, failed_record, load_cells, run_bench
from gemkit.runner.parallel import Task, parse_devices, run_parallel, threads_per_worker


@contextmanager
def torch_threads(count):
    """The serial reference uses a worker's thread count: float reductions may differ in the last
    bits between thread counts, and the comparison is about the runner, not about BLAS."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _results(run_dir):
    """Per cell: metrics and the per-item rows of every benchmark (timings left out)."""
    return {r["cell_id"]: {name: (b["metrics"], (run_dir / "cells" / r["cell_id"] / b["items"]).read_text())
                           for name, b in r["benchmarks"].items()} for r in load_cells(run_dir)}


def test_two_cpu_workers_give_the_serial_results(tmp_path):
    """base + sega + dpo on two CPU workers: the same cell ids, metrics and item rows as one at a time,
    each cell renamed into cells/ once, and the manifest (written by the parent) lists all three."""
    with torch_threads(threads_per_worker(2)):
        serial = run_bench(_config(tmp_path / "serial", benchmarks=["arithmetic-pref"]), progress=False)
    seen = []
    parallel = run_bench(_config(tmp_path / "parallel", benchmarks=["arithmetic-pref"], device="auto",
                                 devices=["cpu", "cpu"]),
                         on_cell_done=lambda record: seen.append(record["cell_id"]), progress=False)
    assert _results(parallel) == _results(serial)
    assert len(_results(parallel)) == 3 and sorted(seen) == sorted(_results(serial))
    assert all(r["status"] == "ok" and r["device"] == "cpu" for r in load_cells(parallel))
    manifest = json.loads((parallel / "manifest.json").read_text())
    assert sorted(manifest["cells"]) == sorted(seen) and manifest["finished"]
    assert manifest["config"]["devices"] == ["cpu", "cpu"] and not (parallel / WORK).exists()


def test_resume_with_devices_skips_finished_cells(tmp_path):
    """A finished run resumed with two workers runs nothing: every cell is already under cells/."""
    one = dict(methods=["dpo"], benchmarks=["arithmetic-pref"], include_base=False)
    out = run_bench(_config(tmp_path / "run", **one), progress=False)
    def stamps():
        return {p.parent.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*/result.json")}

    before = stamps()
    ran = []
    run_bench(_config(tmp_path / "run", **one, device="auto", devices=["cpu", "cpu"]), resume=True,
              on_cell_done=ran.append, progress=False)
    assert ran == [] and stamps() == before and len(before) == 1


class DiesInTheWorker(Cell):
    """A cell that kills the worker process that receives it (unpickling happens only there)."""

    def __setstate__(self, state):
        os._exit(3)


def test_a_dead_worker_fails_only_its_cell_and_a_fresh_one_takes_the_device(tmp_path):
    """Two cells on one device, each killing its worker: both are recorded as failed with the exit
    code, in order, so the second ran on a fresh worker after the first one died."""
    tasks = [Task(DiesInTheWorker("dpo", 4, seed, {"seed": seed}), tmp_path / str(seed)) for seed in (0, 1)]
    done = []
    run_parallel(tasks, ["cpu"], BenchConfig(), [], ready=lambda task, unfinished: True,
                 on_start=lambda task, device: None, on_done=lambda task, record: done.append(record),
                 on_crash=lambda task, message, wall_s: failed_record(task.cell, message, wall_s))
    assert [r["cell_id"] for r in done] == [t.cell.cell_id for t in tasks]
    assert all(r["status"] == "failed" and "on cpu exited with code 3" in r["error"] for r in done)


def test_device_entries_are_normalised():
    assert parse_devices(["cpu", "CPU"]) == ["cpu", "cpu"]


def test_bad_device_lists_say_what_was_expected(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert parse_devices([0, "cuda:1"]) == ["cuda:0", "cuda:1"]
    with pytest.raises(ConfigError) as info:
        parse_devices(["gpu0", "2", "1", "cuda:1"])
    message = str(info.value)
    assert "3 configuration problems" in message
    assert "expected a CUDA index (0, 1, ...) or cpu, got 'gpu0'" in message
    assert "'2' is out of range: this machine has 2 CUDA device(s), indices 0-1" in message
    assert "cuda:1 listed more than once" in message


def test_cuda_entries_without_cuda_are_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="'0' is a CUDA device but torch sees no CUDA device here"):
        BenchConfig(devices=["0", "cpu"]).validate()


def test_devices_and_device_together_are_refused():
    with pytest.raises(ConfigError, match=r"devices \['cpu', 'cpu'\] and device 'cuda:1' both given"):
        BenchConfig(devices=["cpu", "cpu"], device="cuda:1").validate()


def test_devices_from_flag_and_yaml(tmp_path):
    args = build_parser().parse_args(["bench", "--methods", "dpo", "--devices", "0, 1"])
    assert resolve(args).devices == ["0", "1"]
    yaml_file = tmp_path / "b.yaml"
    yaml_file.write_text("methods: [dpo]\ndevices: [0, 1]\n")
    assert resolve(build_parser().parse_args(["bench", "-c", str(yaml_file)])).devices == [0, 1]


def test_threads_are_split_between_workers():
    """⌊T / W⌋, at least 1: 2 threads / 2 workers = 1; 16 / 3 = 5; 2 / 4 = 0 → 1."""
    assert threads_per_worker(2, total=2) == 1
    assert threads_per_worker(3, total=16) == 5
    assert threads_per_worker(4, total=2) == 1
