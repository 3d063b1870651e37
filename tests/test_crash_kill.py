"""Real crashes: ``gemkit train`` and ``gemkit bench`` run as subprocesses and are killed with SIGKILL
(no handler, no clean-up: what a power cut or the OOM killer does) or stopped with SIGINT (Ctrl-C),
then resumed. The resumed run must end exactly where an unbroken run with the same seed ends, with
every log row present once and no torn row.

Everything runs on ``random:tiny`` on the CPU; the kill is timed by polling the output directory,
so it lands wherever the run happens to be (mid-step, mid-save, mid-append): the guarantee must
hold at any point. Each test checks the kill really came before the end (no final checkpoint yet).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from gemkit.train.throughput import TIMING_KEYS

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
STEPS = 6
TRAIN = ["train", "--method", "dpo", "--model", "random:tiny", "--device", "cpu", "--dtype", "float32", "--quiet",
         "--train", "builtin:arithmetic?n=8", "--steps", str(STEPS), "--batch-size", "2", "--lr", "5e-3", "--seed", "3"]
#: wall-clock values differ between any two runs; every other logged metric must agree
TIMING = TIMING_KEYS
TIMEOUT_S = 240


def gemkit(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gemkit", *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    output, _ = proc.communicate(timeout=TIMEOUT_S)
    return proc.returncode, output


def wait_until(proc: subprocess.Popen, ready, what: str) -> None:
    """Poll every 20 ms until ``ready()``; fail (with the run's output) if the run ends first."""
    deadline = time.monotonic() + TIMEOUT_S
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before {what}:\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def saved_step(resume: Path) -> int:
    """The step of the resumable state on disk, 0 while there is none (or it is being swapped in)."""
    try:
        return int(json.loads((resume / "gemkit.json").read_text())["step"])
    except (OSError, ValueError, KeyError):
        return 0


def log_rows(path: Path) -> list[dict]:
    """Every line of a JSONL log parsed strictly: a torn or partial line fails the test."""
    text = path.read_text()
    assert text.endswith("\n"), f"{path}: last line is unfinished"
    return [json.loads(line) for line in text.splitlines()]


def assert_same_metrics(rows: list[dict], expected: list[dict]) -> None:
    assert [r["step"] for r in rows] == [r["step"] for r in expected] == list(range(1, len(expected) + 1))
    for row, want in zip(rows, expected, strict=True):
        assert set(row) == set(want)
        for key in set(want) - TIMING:
            assert abs(row[key] - want[key]) <= 1e-6, (row["step"], key, row[key], want[key])


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = load_file(a / "adapter_model.safetensors"), load_file(b / "adapter_model.safetensors")
    assert first.keys() == second.keys() and first
    worst = max(float((first[k] - second[k]).abs().max()) for k in first)
    assert worst <= 1e-6, worst


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory) -> Path:
    """One run that is never interrupted (saving every step, like the killed run)."""
    out = tmp_path_factory.mktemp("unbroken") / "run"
    code, output = finish(gemkit(*TRAIN, "--out", str(out), "--save-every", "1"))
    assert code == 0, output
    return out


def test_sigkill_mid_run_then_resume_matches_the_unbroken_run(tmp_path, unbroken):
    """Kill -9 once the state of step 2 or later is on disk (steps 1..6, saved every step); the
    resumed run logs steps 1..6 once each, with the unbroken run's metrics and final weights."""
    out = tmp_path / "run"
    proc = gemkit(*TRAIN, "--out", str(out), "--save-every", "1")
    wait_until(proc, lambda: saved_step(out / "resume") >= 2, "a resumable state of step 2")
    proc.send_signal(signal.SIGKILL)
    code, _ = finish(proc)
    assert code == -signal.SIGKILL
    assert not (out / "checkpoint").exists(), "the kill came after the run had finished"

    code, output = finish(gemkit(*TRAIN, "--out", str(out), "--save-every", "1", "--resume"))
    assert code == 0, output
    assert_same_metrics(log_rows(out / "train_log.jsonl"), log_rows(unbroken / "train_log.jsonl"))
    assert_same_weights(out / "checkpoint", unbroken / "checkpoint")


def test_sigint_saves_exits_130_and_resume_matches_the_unbroken_run(tmp_path, unbroken):
    """Ctrl-C after the first logged step (no --save-every): the step in progress finishes, the
    state is saved at exactly the last logged step, the exit code is 130 (128 + SIGINT); resuming
    finishes with the unbroken run's metrics and weights."""
    out = tmp_path / "run"
    proc = gemkit(*TRAIN, "--out", str(out))
    log = out / "train_log.jsonl"
    wait_until(proc, lambda: log.is_file() and log.read_text().count("\n") >= 1, "the first log row")
    proc.send_signal(signal.SIGINT)
    code, output = finish(proc)
    assert code == 130, output
    assert "interrupted, resumable with --resume" in output
    rows = log_rows(log)
    assert 1 <= len(rows) < STEPS, "the interrupt came after the run had finished"
    assert saved_step(out / "resume") == rows[-1]["step"]

    code, output = finish(gemkit(*TRAIN, "--out", str(out), "--resume"))
    assert code == 0, output
    assert_same_metrics(log_rows(log), log_rows(unbroken / "train_log.jsonl"))
    assert_same_weights(out / "checkpoint", unbroken / "checkpoint")


BENCH = ["bench", "--methods", "sft", "--seeds", "0,1", "--model", "random:tiny", "--benchmarks", "arithmetic-pref",
         "--limit", "2", "--steps", "2", "--batch-size", "2", "--shots", "4", "--no-base", "--device", "cpu"]


def cell_records(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted((out / "cells").glob("*/result.json"))}


def test_bench_sigkill_in_the_second_cell_then_resume_matches_the_unbroken_run(tmp_path):
    """Two cells (sft, seeds 0 and 1). Kill -9 once the first cell is finished and the second has
    logged a training step; ``--resume`` skips the first, redoes the second, and every cell ends with
    the unbroken run's benchmark metrics, item rows and training log, each row once."""
    reference = tmp_path / "unbroken"
    code, output = finish(gemkit(*BENCH, "--out", str(reference)))
    assert code == 0, output
    out = tmp_path / "killed"
    proc = gemkit(*BENCH, "--out", str(out))

    def second_cell_training() -> bool:
        return len(list((out / "cells").glob("*/result.json"))) == 1 and any(
            (out / ".work").glob("*/train/train_log.jsonl"))

    wait_until(proc, second_cell_training, "the second cell's first training step")
    proc.send_signal(signal.SIGKILL)
    assert finish(proc)[0] == -signal.SIGKILL
    (first_done,) = cell_records(out)

    code, output = finish(gemkit(*BENCH, "--out", str(out), "--resume"))
    assert code == 0, output
    assert f"{first_done}: already finished, skipped" in output
    resumed, expected = cell_records(out), cell_records(reference)
    assert resumed.keys() == expected.keys() and len(expected) == 2
    assert set(json.loads((out / "manifest.json").read_text())["cells"]) == set(expected)
    assert not (out / ".work").exists()
    for cell_id, want in expected.items():
        got = resumed[cell_id]
        assert got["status"] == want["status"] == "ok"
        for name, bench in want["benchmarks"].items():
            for metric, value in bench["metrics"].items():
                assert abs(got["benchmarks"][name]["metrics"][metric] - value) <= 1e-6, (cell_id, metric)
            items, want_items = (log_rows(root / "cells" / cell_id / bench["items"]) for root in (out, reference))
            assert [i["id"] for i in items] == [i["id"] for i in want_items]
            assert len({i["id"] for i in items}) == len(items)
            for item, want_item in zip(items, want_items, strict=True):
                assert item.keys() == want_item.keys()
                assert all(abs(item[k] - v) <= 1e-6 for k, v in want_item.items() if isinstance(v, float)), item
        assert_same_metrics(log_rows(out / "cells" / cell_id / "train_log.jsonl"),
                            log_rows(reference / "cells" / cell_id / "train_log.jsonl"))
