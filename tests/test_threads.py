"""gemkit.threads: the CPUs a process may use, the environment's say, and the automatic choice.

The cgroup and /proc files are fakes written under tmp_path in the kernel's exact formats; the
functions under test read them for real.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gemkit.errors import ConfigError
from gemkit.threads import (
    adapt_threads,
    auto_threads,
    busy_cpus,
    cgroup_cpu_quota,
    choose_threads,
    env_thread_count,
    own_running_threads,
    parse_thread_count,
    set_wait_policy,
    torch_default_counts,
    usable_cpus,
)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_is_quota_over_period_smallest_along_the_path(tmp_path):
    """cpu.max "150000 100000" = 1.5 CPUs at /job; the parent's "300000 100000" = 3 CPUs; the smaller wins.

    Checked: taking the largest limit instead makes this fail (3.0).
    """
    _write(tmp_path / "proc_cgroup", "0::/batch/job\n")
    _write(tmp_path / "fs" / "batch" / "cpu.max", "300000 100000\n")
    _write(tmp_path / "fs" / "batch" / "job" / "cpu.max", "150000 100000\n")
    _write(tmp_path / "fs" / "cpu.max", "max 100000\n")  # the root: unlimited
    assert cgroup_cpu_quota(tmp_path / "proc_cgroup", tmp_path / "fs") == pytest.approx(1.5)


def test_cgroup_v2_unlimited_is_none(tmp_path):
    _write(tmp_path / "proc_cgroup", "0::/job\n")
    _write(tmp_path / "fs" / "job" / "cpu.max", "max 100000\n")
    assert cgroup_cpu_quota(tmp_path / "proc_cgroup", tmp_path / "fs") is None


def test_cgroup_v1_cfs_quota(tmp_path):
    """cfs_quota_us 50000 / cfs_period_us 100000 = 0.5 CPU; −1 (the root here) means unlimited."""
    _write(tmp_path / "proc_cgroup", "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    job = tmp_path / "fs" / "cpu,cpuacct" / "docker" / "abc"
    _write(job / "cpu.cfs_quota_us", "50000\n")
    _write(job / "cpu.cfs_period_us", "100000\n")
    _write(tmp_path / "fs" / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    _write(tmp_path / "fs" / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_quota(tmp_path / "proc_cgroup", tmp_path / "fs") == pytest.approx(0.5)


def test_no_cgroup_file_is_none(tmp_path):
    assert cgroup_cpu_quota(tmp_path / "missing", tmp_path) is None


def test_usable_cpus_caps_affinity_by_the_rounded_up_quota():
    """8 CPUs in the mask, quota 1.5 → ⌈1.5⌉ = 2; quota 0.5 → 1; no quota → 8; quota 16 → 8."""
    assert usable_cpus(8, 1.5) == 2
    assert usable_cpus(8, 0.5) == 1
    assert usable_cpus(8, None) == 8
    assert usable_cpus(8, 16.0) == 8


def test_env_thread_count_order_and_nested_form():
    assert env_thread_count({}) is None
    assert env_thread_count({"OMP_NUM_THREADS": ""}) is None
    assert env_thread_count({"MKL_NUM_THREADS": "3"}) == ("MKL_NUM_THREADS", 3)
    assert env_thread_count({"OMP_NUM_THREADS": "4,2", "MKL_NUM_THREADS": "3"}) == ("OMP_NUM_THREADS", 4)


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5"])
def test_bad_thread_counts_name_the_source(text):
    with pytest.raises(ConfigError, match=f"OMP_NUM_THREADS: expected a positive whole number of threads, got '{text}'"):
        env_thread_count({"OMP_NUM_THREADS": text})
    with pytest.raises(ConfigError, match="--threads"):
        parse_thread_count(text, "--threads")


def _tasks(directory: Path, states: list[str]) -> Path:
    """A fake /proc/self/task: one ``<tid>/stat`` per state, with a command name holding ") R (" to
    check the state is read after the last parenthesis."""
    for tid, state in enumerate(states, start=100):
        _write(directory / str(tid) / "stat", f"{tid} (py) R (x) {state} 1 {tid} {tid} 0 -1\n")
    return directory


def test_busy_cpus_averages_procs_running_minus_this_process_running_threads(tmp_path):
    """procs_running 5 with 3 of our own threads running (the reader and two spinning OpenMP
    workers; a fourth sleeps) → 2 others. (A fake file does not change between samples, so the mean is 2.)

    Checked: counting only the reader as ours (the earlier rule) makes this fail (4.0).
    """
    stat = tmp_path / "stat"
    _write(stat, "cpu  1 2 3 4\nctxt 99\nprocs_running 5\nprocs_blocked 0\n")
    tasks = _tasks(tmp_path / "task", ["R", "R", "S", "R"])
    assert own_running_threads(tasks) == 3
    assert busy_cpus(stat, samples=3, interval_s=0.0, tasks=tasks) == pytest.approx(2.0)
    assert busy_cpus(tmp_path / "missing", samples=1) is None
    assert own_running_threads(tmp_path / "no-tasks") == 1  # the caller itself runs


def test_adapt_threads_follows_load_that_arrives_after_start(keep_torch_threads, monkeypatch):
    """An automatic choice of 2 threads drops to 1 while two other tasks run and returns to 2 when
    they leave; a --threads choice is never changed. Checked: with adapt_threads returning early the
    count stays 2 under load and the first assert fails."""
    import torch

    import gemkit.threads as threads

    torch.set_num_threads(2)
    monkeypatch.setattr(threads, "_CHOICE", threads.ThreadChoice(2, "auto", usable_cpus=2, busy_cpus=0.0))
    assert adapt_threads(busy=lambda: 2.0) == 1 and torch.get_num_threads() == 1
    assert adapt_threads(busy=lambda: 0.0) == 2 and torch.get_num_threads() == 2
    monkeypatch.setattr(threads, "_CHOICE", threads.ThreadChoice(2, "--threads", usable_cpus=2))
    assert adapt_threads(busy=lambda: 2.0) == 2 and torch.get_num_threads() == 2


def test_auto_threads_one_per_idle_cpu():
    """2 CPUs: nothing else running → 2; 0.4 busy → ⌊2 − 0.4 + ½⌋ = 2; 1 busy → 1; 10 busy → 1 (never 0).

    Checked: dropping the ½ (rounding down) makes this fail (0.4 busy → 1).
    """
    assert auto_threads(2, 0.0) == 2
    assert auto_threads(2, 0.4) == 2
    assert auto_threads(2, 1.0) == 1
    assert auto_threads(2, 10.0) == 1
    assert auto_threads(8, 2.6) == 5  # ⌊8 − 2.6 + ½⌋ = ⌊5.9⌋
    assert auto_threads(4, None) == 4  # unreadable: all usable CPUs


def test_precedence_flag_env_caller_auto():
    """--threads beats the environment; the environment beats a caller's count; a caller's count
    (3, not one of torch's own defaults {2}) beats the automatic choice; the automatic choice with
    1.2 busy on 2 usable CPUs is ⌊2 − 1.2 + ½⌋ = 1."""
    common = dict(usable=2, defaults={2}, busy=lambda: 1.2)
    assert choose_threads(5, environ={"OMP_NUM_THREADS": "3"}, current=3, **common).source == "--threads"
    by_env = choose_threads(None, environ={"OMP_NUM_THREADS": "3"}, current=7, **common)
    assert (by_env.threads, by_env.source) == (3, "OMP_NUM_THREADS")
    by_caller = choose_threads(None, environ={}, current=3, **common)
    assert (by_caller.threads, by_caller.source) == (3, "caller")
    auto = choose_threads(None, environ={}, current=2, **common)
    assert (auto.threads, auto.source, auto.busy_cpus) == (1, "auto", 1.2)
    with pytest.raises(ConfigError, match="got 0"):
        choose_threads(0, environ={}, current=2, **common)


def test_torch_default_counts_include_physical_cores(tmp_path):
    """4 logical CPUs in 2 sibling pairs → physical cores 2 is one of torch's possible defaults."""
    for cpu, siblings in enumerate(["0,2", "1,3", "0,2", "1,3"]):
        _write(tmp_path / f"cpu{cpu}" / "topology" / "thread_siblings_list", siblings + "\n")
    assert 2 in torch_default_counts(tmp_path)


def test_wait_policy_passive_only_when_busy_before_torch_and_if_the_user_chose_none():
    """Busy (1.5 other runnable tasks) or unknown load → PASSIVE; idle (0.25) → libgomp's default
    spinning, which decodes faster on free cores; a user's setting or an imported torch → untouched."""
    busy: dict[str, str] = {}
    assert "set by gemkit" in set_wait_policy(busy, modules={}, busy=lambda: 1.5)
    assert busy == {"OMP_WAIT_POLICY": "PASSIVE"}
    unknown: dict[str, str] = {}
    assert "unknown load" in set_wait_policy(unknown, modules={}, busy=lambda: None)
    assert unknown == {"OMP_WAIT_POLICY": "PASSIVE"}
    idle: dict[str, str] = {}
    assert "idle at start" in set_wait_policy(idle, modules={}, busy=lambda: 0.25)
    assert idle == {}
    user = {"GOMP_SPINCOUNT": "10000"}
    assert "from the environment" in set_wait_policy(user, modules={}, busy=lambda: 1.5)
    assert user == {"GOMP_SPINCOUNT": "10000"}
    late: dict[str, str] = {}
    assert "too late" in set_wait_policy(late, modules={"torch": object()}, busy=lambda: 1.5)
    assert late == {}


@pytest.fixture
def keep_torch_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("where", ["root", "subcommand"])
def test_cli_threads_option_reaches_torch_and_config_json(tmp_path, keep_torch_threads, where):
    """`gemkit --threads 1 train …` and `gemkit train … --threads 1` both give torch 1 thread and
    record {"threads": 1, "source": "--threads"} in OUT/config.json."""
    import json

    import torch

    from gemkit.cli import main

    train = ["train", "--method", "sft", "--train", "builtin:arithmetic?n=4", "--out", str(tmp_path / "run"),
             "--steps", "1", "--batch-size", "2", "--model", "random:tiny", "--device", "cpu", "--dtype", "float32",
             "--quiet"]
    argv = ["--threads", "1", *train] if where == "root" else [*train, "--threads", "1"]
    assert main(argv) == 0
    assert torch.get_num_threads() == 1
    record = json.loads((tmp_path / "run" / "config.json").read_text())["threads"]
    assert (record["threads"], record["source"]) == (1, "--threads")
    assert record["usable_cpus"] >= 1 and record["wait_policy"]


def test_importing_the_cli_loads_no_torch():
    """The CLI sets OMP_WAIT_POLICY before torch starts its OpenMP runtime, which only works while
    ``import gemkit.cli`` (and the public API in ``gemkit/__init__.py``) import no torch. Checked: the
    eager imports that gemkit/__init__.py had before made this fail."""
    code = "import sys, gemkit.cli, gemkit; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.stdout.strip() == "False"
