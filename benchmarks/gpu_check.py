"""One-command GPU check: gemkit's engine at real model shapes, side by side with TRL, in about 8 minutes.

    .venv/bin/python benchmarks/gpu_check.py            # one H100/H200, bf16, no internet → reports/gpu.md
    .venv/bin/python benchmarks/gpu_check.py --tiny     # the same checks on CPU with random:tiny (the test)

Random-initialised models of real shapes (``random:1b`` = Llama-3.2-1B, ``random:8b`` = Llama-3-8B,
gemkit.models.random_init), so nothing is downloaded. The checks, each in its own process with its
own time limit (a failure is recorded and the next check still runs):

1. DPO, 8B-shaped with LoRA: gemkit's engine against TRL's DPOTrainer on the same model and batch
   (``perf_dpo_vs_trl.py``);
2. SEGA against TRL's GRPOTrainer, 1B-shaped with LoRA (``perf_sega_vs_grpo.py``);
3. full fine-tuning of the 1B shape with DPO through ``gemkit train`` (frozen reference copy):
   tokens/s, MFU and peak memory from the engine's own log rows;
4. FSDP2 smoke test: ``accelerate launch --config_file configs/accelerate/fsdp.yaml`` on one GPU
   (with ``--tiny``: two CPU processes under torchrun with the same FSDP settings, as
   tests/test_distributed.py does).

The report (``--out``, default reports/gpu.md) is rewritten: a summary table, then each check's
own section. On a GPU its figures are reproduced by running this script again.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
#: what ``accelerate launch --config_file configs/accelerate/fsdp.yaml`` exports, for the CPU variant
FSDP_ENV = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
            "FSDP_STATE_DICT_TYPE": "FULL_STATE_DICT", "FSDP_RESHARD_AFTER_FORWARD": "true"}


@dataclass
class Check:
    name: str
    command: list[str]
    timeout_s: int
    env: dict[str, str] = field(default_factory=dict)
    report: Path | None = None  # a perf script's own report section
    train_out: Path | None = None  # a gemkit train output directory: its log rows give the figures


def plan(tiny: bool, work: Path) -> list[Check]:
    """The four checks, sized for one H100/H200 (or, with ``tiny``, for a CPU test run)."""
    py = sys.executable
    if tiny:
        perf = ["--model", "random:tiny", "--device", "cpu", "--threads", "1", "--steps", "1", "--warmup", "0",
                "--in-process"]
        dpo_args, sega_args = ["--batch", "2", "--seq-tokens", "96"], ["--k", "2", "--new-tokens", "8"]
        train = ["--model", "random:tiny", "--device", "cpu", "--dtype", "float32", "--steps", "2", "--batch-size", "2"]
        fsdp_launch = [py, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517"]
        fsdp_env = {**FSDP_ENV, "OMP_NUM_THREADS": "1"}
        fsdp_model = ["--model", "random:tiny", "--device", "cpu", "--batch-size", "1"]
    else:
        perf = ["--device", "cuda", "--dtype", "bfloat16", "--steps", "3", "--warmup", "1"]
        dpo_args = ["--model-size", "8b", "--batch", "4", "--seq-tokens", "512"]
        sega_args = ["--model-size", "1b", "--k", "8", "--new-tokens", "128"]
        train = ["--model", "random:1b", "--device", "cuda", "--dtype", "bfloat16", "--steps", "6", "--batch-size",
                 "8", "--max-length", "512"]
        fsdp_launch = [py, "-m", "accelerate.commands.launch", "--config_file",
                       str(REPO / "configs" / "accelerate" / "fsdp.yaml"), "--num_processes", "1"]
        fsdp_env = {}
        fsdp_model = ["--model", "random:1b", "--device", "cuda", "--batch-size", "4", "--max-length", "512"]
    common_train = ["--method", "dpo", "--lora-r", "0", "--lr", "1e-5", "--quiet", "--seed", "0"]
    # The limits fit one H100/H200 (about 8 minutes in all); a shared CPU running --tiny is slower to
    # import and start processes than the work itself, so there each check gets up to 10 minutes.
    limit = (lambda seconds: 600) if tiny else (lambda seconds: seconds)
    return [
        Check("DPO: gemkit vs TRL DPOTrainer (LoRA)", [py, str(BENCH / "perf_dpo_vs_trl.py"), *perf, *dpo_args,
              "--report", str(work / "dpo.md")], limit(240), report=work / "dpo.md"),
        Check("SEGA vs TRL GRPOTrainer (LoRA)", [py, str(BENCH / "perf_sega_vs_grpo.py"), *perf, *sega_args,
              "--report", str(work / "sega.md")], limit(150), report=work / "sega.md"),
        Check("DPO full fine-tuning, gemkit engine", [py, "-m", "gemkit", "train", *common_train, *train,
              "--out", str(work / "full")], limit(120), train_out=work / "full"),
        Check("FSDP2 smoke test (DPO, full fine-tuning)", [*fsdp_launch, "-m", "gemkit", "train", *common_train,
              *fsdp_model, "--steps", "2", "--out", str(work / "fsdp")], limit(120), env=fsdp_env,
              train_out=work / "fsdp"),
    ]


def run_check(check: Check) -> dict[str, object]:
    """Run one check in its own process; its status, seconds, engine figures and output tail."""
    started = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])), **check.env}
    print(f"[gpu-check] {check.name}: {shlex.join(check.command)}", flush=True)
    try:
        proc = subprocess.run(check.command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=check.timeout_s)
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        output = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        status = f"FAILED (over {check.timeout_s} s)"
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    result: dict[str, object] = {"name": check.name, "status": status, "seconds": time.perf_counter() - started,
                                 "command": shlex.join(check.command), "tail": output[-6000:]}
    if check.train_out is not None and status == "ok":
        result.update(engine_figures(check.train_out / "train_log.jsonl"))
    print(f"[gpu-check] {check.name}: {status} in {result['seconds']:.0f} s", flush=True)
    return result


def engine_figures(log: Path) -> dict[str, float]:
    """Mean tokens/s and MFU over the logged steps after the first (warm-up), and the peak memory."""
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    rows = [row for row in rows if "tokens_per_s" in row]
    timed = rows[1:] or rows
    return {"tokens_per_s": sum(r["tokens_per_s"] for r in timed) / len(timed),
            "mfu": sum(r["mfu"] for r in timed) / len(timed), "peak_memory_gb": max(r["peak_memory_gb"] for r in rows)}


def write_report(path: Path, results: list[dict[str, object]], checks: list[Check], tiny: bool) -> None:
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() and not tiny else "CPU (--tiny)"
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# gemkit GPU check", "", f"Written by `{shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])}` "
             f"on {device}, {when}; torch {torch.__version__}. Rerun that command to reproduce.", "",
             "| check | status | seconds | tokens/s | MFU | peak memory GB |", "|---|---|---:|---:|---:|---:|"]
    for r in results:
        figures = [f"{r['tokens_per_s']:.0f}", f"{100 * r['mfu']:.1f} %", f"{r['peak_memory_gb']:.1f}"] \
            if "mfu" in r else ["see below"] * 3
        lines.append(f"| {r['name']} | {r['status']} | {r['seconds']:.0f} | " + " | ".join(figures) + " |")
    lines += ["", "MFU for the engine rows is gemkit.train.throughput's count (6·N per trained token for full "
              "fine-tuning) over the datasheet peak; the perf sections state their own.", ""]
    for r, check in zip(results, checks, strict=True):
        lines += [f"## {r['name']}", "", "```", str(r["command"]), "```", ""]
        if check.report is not None and check.report.exists():
            lines += [check.report.read_text().split("\n", 3)[-1].strip(), ""]
        if str(r["status"]) != "ok":
            lines += ["Output tail:", "", "```", str(r["tail"]), "```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(f"[gpu-check] wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="Run the same checks on CPU with random:tiny.")
    parser.add_argument("--out", default=str(REPO / "reports" / "gpu.md"), help="Report file (rewritten).")
    args = parser.parse_args(argv)
    if not args.tiny:
        import torch

        if not torch.cuda.is_available():
            print("Error: no CUDA GPU is visible; use --tiny to run the checks on CPU", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        checks = plan(args.tiny, Path(work))
        results = [run_check(check) for check in checks]
        write_report(Path(args.out), results, checks, args.tiny)
    failed = [r["name"] for r in results if r["status"] != "ok"]
    print(f"[gpu-check] {len(results) - len(failed)} of {len(results)} checks ok" +
          (f"; failed: {', '.join(map(str, failed))}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
