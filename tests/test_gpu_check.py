"""The one-command GPU check runs its four checks end to end on CPU with ``--tiny``.

It asserts that every check passed and that the report holds the engine's throughput figures and
both TRL side-by-side sections; the timings themselves depend on the machine and are not checked.
"""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_gpu_check_tiny_runs_every_check_on_cpu(tmp_path):
    report = tmp_path / "gpu.md"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(REPO / "benchmarks" / "gpu_check.sh"), "--tiny", "--out", str(report)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[gpu-check] 4 of 4 checks ok"
    text = report.read_text()
    assert text.count("| ok |") == 4
    assert "DPOTrainer" in text and "GRPOTrainer" in text and "**Ratios**" in text
    # the two engine rows carry tokens/s, MFU and peak memory (numbers, not "see below")
    engine_rows = [line for line in text.splitlines() if line.startswith(("| DPO full", "| FSDP2"))]
    assert len(engine_rows) == 2 and all("see below" not in row and "%" in row for row in engine_rows)
