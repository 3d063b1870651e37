"""`gemkit bench --devices` / `--ray-address`: cells as Ray tasks on a local 2-CPU Ray cluster give the
serial run's results, resume skips finished cells, a dead task fails only its cell; bad device lists
are ConfigErrors that say what was expected."""
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from _tiny_bench import tiny_bench_config as _config

from gemkit.cli import build_parser
from gemkit.cli.bench import resolve
from gemkit.errors import ConfigError
from gemkit.results import CellResult, load_cells
from gemkit.runner.bench import WORK, BenchConfig, Cell, failed_record, run_bench
from gemkit.runner.devices import parse_devices, threads_per_worker
from gemkit.runner.ray_grid import Slot, Task, cluster_slots, local_slots, run_on_ray

REPO = Path(__file__).resolve().parents[1]


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
    return {r.cell_id: {name: (b.metrics, (run_dir / "cells" / r.cell_id / b.items).read_text())
                        for name, b in r.benchmarks.items()} for r in load_cells(run_dir)}


def test_two_cpu_workers_give_the_serial_results(tmp_path, ray_local):
    """base + sega + dpo as Ray tasks on two CPU slots: the same cell ids, metrics and item rows as one
    at a time, each cell renamed into cells/ once, and the manifest (written by the driver) lists all
    three."""
    with torch_threads(threads_per_worker(2)):
        serial = run_bench(_config(tmp_path / "serial", benchmarks=["arithmetic-pref"]), progress=False)
    seen = []
    parallel = run_bench(_config(tmp_path / "parallel", benchmarks=["arithmetic-pref"], device="auto",
                                 devices=["cpu", "cpu"]),
                         on_cell_done=lambda record: seen.append(record.cell_id), progress=False)
    assert _results(parallel) == _results(serial)
    assert len(_results(parallel)) == 3 and sorted(seen) == sorted(_results(serial))
    assert all(r.status == "ok" and r.device == "cpu" for r in load_cells(parallel))
    manifest = json.loads((parallel / "manifest.json").read_text())
    assert sorted(manifest["cells"]) == sorted(seen) and manifest["finished"]
    assert manifest["config"]["devices"] == ["cpu", "cpu"] and not (parallel / WORK).exists()


def test_resume_with_devices_skips_finished_cells(tmp_path):
    """A finished run resumed with two CPU slots runs nothing (and starts no Ray session): every cell is
    already under cells/."""
    one = dict(methods=["dpo"], benchmarks=["arithmetic-pref"], include_base=False)
    out = run_bench(_config(tmp_path / "run", **one), progress=False)
    def stamps():
        return {p.parent.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*/result.json")}

    before = stamps()
    ran = []
    run_bench(_config(tmp_path / "run", **one, device="auto", devices=["cpu", "cpu"]), resume=True,
              on_cell_done=ran.append, progress=False)
    assert ran == [] and stamps() == before and len(before) == 1


def _dies_for_odd_seeds():
    """A Ray task body that kills its own worker process for cells with an odd seed and returns an ok
    record otherwise (built in a function so Ray ships it by value to workers that cannot import tests)."""
    def run_cell(cell, config, pairs, work, device, threads):
        if cell.seed % 2:
            os._exit(3)
        return CellResult(cell.cell_id, cell.method, cell.shots, cell.seed, "ok", config={"threads": threads},
                          device=device)
    return run_cell


def test_a_dead_ray_task_fails_only_its_cell_and_the_slot_runs_the_next(tmp_path, ray_local):
    """Four cells on one CPU slot, seeds 0-3, the odd ones killing their worker: cells 1 and 3 are
    failed records naming the dead Ray task, 0 and 2 finish ok, in planned order, so the slot went on
    with a fresh worker after each death."""
    tasks = [Task(Cell("dpo", 4, seed, {"seed": seed}), tmp_path / str(seed)) for seed in range(4)]
    done = []
    run_on_ray(ray_local, tasks, local_slots(["cpu"], total=1), BenchConfig(), [],
               ready=lambda task, unfinished: True, on_start=lambda task, label: None,
               on_done=lambda task, record: done.append(record),
               on_crash=lambda task, message, wall_s: failed_record(task.cell, message, wall_s),
               run_cell=_dies_for_odd_seeds())
    assert [r.cell_id for r in done] == [t.cell.cell_id for t in tasks]
    assert [r.status for r in done] == ["ok", "failed", "ok", "failed"]
    assert all("the Ray task running this cell died (WorkerCrashedError" in r.error for r in done[1::2])
    assert done[0].config["threads"] == 1 and done[0].device == "cpu"


def test_a_cell_waits_for_the_cell_it_depends_on(tmp_path, ray_local):
    """Two slots, three cells; ``ready`` holds the last two back until the first (their SFT cell) has
    finished, so the first finishes before either of the others starts, although a slot was free."""
    tasks = [Task(Cell("sft" if seed == 0 else "dpo", 4, seed, {"seed": seed}), tmp_path / str(seed))
             for seed in (0, 2, 4)]
    sft = tasks[0].cell.cell_id
    events = []
    run_on_ray(ray_local, tasks, local_slots(["cpu", "cpu"], total=2), BenchConfig(), [],
               ready=lambda task, unfinished: task.cell.method == "sft" or sft not in unfinished,
               on_start=lambda task, label: events.append(("start", task.cell.seed, label)),
               on_done=lambda task, record: events.append(("done", task.cell.seed)),
               on_crash=lambda task, message, wall_s: pytest.fail(message), run_cell=_dies_for_odd_seeds())
    assert events[:2] == [("start", 0, "cpu#0"), ("done", 0)]
    assert sorted(events[2:]) == [("done", 2), ("done", 4), ("start", 2, "cpu#0"), ("start", 4, "cpu#1")]


def test_slots_split_threads_and_ask_ray_for_them():
    """2 CPU entries sharing 2 threads: 1 CPU and 1 thread each; a GPU entry asks for 1 GPU (seen as
    cuda:0 inside its task); a cluster without GPUs gives every cell ``cell_cpus`` CPUs."""
    assert local_slots(["cpu", "cpu"], total=2) == [Slot("cpu#0", "cpu", 1, 0, 1), Slot("cpu#1", "cpu", 1, 0, 1)]
    assert local_slots(["cuda:1", "cpu"], total=4) == [Slot("cuda:1", "cuda:0", 1, 1, 2), Slot("cpu", "cpu", 2, 0, 2)]
    assert cluster_slots(2, device="auto", cell_cpus=3, cluster_gpus=0) == [Slot("ray-cpu", "cpu", 3, 0, 3)] * 2
    assert cluster_slots(1, device="auto", cell_cpus=3, cluster_gpus=8) == [Slot("ray-gpu", "cuda:0", 1, 1, 3)]
    assert cluster_slots(1, device="cpu", cell_cpus=3, cluster_gpus=8)[0].num_gpus == 0


def _gemkit_bench(out, *extra):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "gemkit", "bench", "--methods", "dpo", "--benchmarks", "arithmetic-pref",
            "--model", "random:tiny", "--steps", "1", "--batch-size", "2", "--lora-r", "4", "--limit", "3",
            "--shots", "4", "--no-sft", "--out", str(out), *extra]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)


def test_cli_devices_cpu_cpu_starts_a_local_ray_session(tmp_path):
    """`gemkit bench --devices cpu,cpu` (base + dpo) runs its cells on a Ray session it starts itself,
    and says so in its log; both cells finish ok."""
    run = _gemkit_bench(tmp_path / "run", "--devices", "cpu,cpu")
    assert run.returncode == 0, run.stdout + run.stderr
    log = run.stdout + run.stderr
    assert "bench: started a local Ray session for 2 cells at a time (address " in log and "2 CPUs" in log
    assert [r.status for r in load_cells(tmp_path / "run")] == ["ok", "ok"]


def test_cli_ray_address_runs_on_an_existing_cluster_and_resumes(tmp_path, ray_local):
    """`--ray-address` connects another process to the test session's cluster: the cells run there;
    a second run with --resume finds both finished and runs nothing (no Ray session at all)."""
    address = ray_local.get_runtime_context().gcs_address
    run = _gemkit_bench(tmp_path / "run", "--ray-address", address)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"bench: connected to the Ray cluster at {address}" in run.stdout + run.stderr
    cells = load_cells(tmp_path / "run")
    assert [r.status for r in cells] == ["ok", "ok"]
    again = _gemkit_bench(tmp_path / "run", "--ray-address", address, "--resume")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (again.stdout + again.stderr).count("already finished, skipped") == 2
    assert "connected to the Ray cluster" not in again.stdout + again.stderr
    assert load_cells(tmp_path / "run") == cells


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


def test_devices_and_ray_address_together_are_refused():
    with pytest.raises(ConfigError, match=r"devices \['cpu', 'cpu'\] and ray_address 'auto' both given"):
        BenchConfig(devices=["cpu", "cpu"], ray_address="auto").validate()


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
