"""Every training objective under every multi-process launch: does each run, and does it save?

    .venv/bin/python benchmarks/launch_matrix.py                  # 2 CPU processes → reports/launch_matrix.md
    .venv/bin/python benchmarks/launch_matrix.py --device cuda    # 2 GPUs, bf16

Each cell trains one built-in objective (random:tiny on CPU, random:1b on CUDA; 2 steps, batch 2
per rank, ``builtin:arithmetic`` prompts for the objectives that sample) under one launch, with
full fine-tuning and with LoRA, and checks that the run exits 0, logs every step and saves a
checkpoint that loads:

- ``ddp``: ``torchrun --nproc-per-node 2``;
- ``fsdp2``: ``accelerate launch --config_file configs/accelerate/fsdp.yaml`` (on CPU: torchrun
  with the variables that launch exports, since ``accelerate launch --cpu`` starts one process);
- ``zero2``, ``zero3``: ``accelerate launch --config_file configs/accelerate/deepspeed-zero3.yaml
  --zero_stage S`` (on CPU through DeepSpeed's CPU accelerator, ``DS_ACCELERATOR=cpu``).

rm-ppo first gets a reward model (``gemkit train --method rm``, one process). Whether each launch
also trains *exactly* like one process on the global batch is tests/test_distributed.py's job; this
is the breadth check behind "every objective works under it". The report (``--out``) is rewritten
with one row per objective and one column per launch; the run's command line is in its header.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs" / "accelerate"
LAUNCHES = ("ddp", "fsdp2", "zero2", "zero3")
#: what ``accelerate launch --config_file configs/accelerate/fsdp.yaml`` exports, for the CPU variant
FSDP_ENV = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
            "FSDP_STATE_DICT_TYPE": "FULL_STATE_DICT", "FSDP_RESHARD_AFTER_FORWARD": "true"}
#: objectives that sample in their step: prompts with gold answers and a short, small group
SAMPLING = ["--train", "builtin:arithmetic?n=8", "--set", "k=2", "--set", "max_new_tokens=6"]
OPTIONS = {"grpo": [*SAMPLING, "--set", "reward.check=last-number"], "sega": SAMPLING,
           "pro": [*SAMPLING, "--set", "source=group"], "rm-ppo": SAMPLING}


@dataclass
class Cell:
    """One objective under one launch: ``ok`` when it exited 0, logged every step and its checkpoint loads."""

    ok: bool
    detail: str
    seconds: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launcher(launch: str, device: str) -> tuple[list[str], dict[str, str]]:
    """The command prefix (taking ``-m gemkit ...``) and extra environment of a 2-process launch."""
    port = str(_free_port())
    if launch == "ddp" or (launch == "fsdp2" and device == "cpu"):
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", port]
        return command, FSDP_ENV if launch == "fsdp2" else {}
    accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2",
                  "--main_process_port", port, "--mixed_precision", "no" if device == "cpu" else "bf16"]
    if launch == "fsdp2":
        return [*accelerate, "--config_file", str(CONFIGS / "fsdp.yaml")], {}
    stage = launch.removeprefix("zero")
    return [*accelerate, "--config_file", str(CONFIGS / "deepspeed-zero3.yaml"), "--zero_stage", stage], \
        {"DS_ACCELERATOR": "cpu"} if device == "cpu" else {}


def run_cell(method: str, launch: str, lora_r: int, common: list[str], out: Path, env: dict[str, str],
             reward_model: Path | None) -> Cell:
    prefix, extra_env = launcher(launch, common[common.index("--device") + 1])
    options = list(OPTIONS.get(method, []))
    if method == "rm-ppo":
        options += ["--set", f"reward_model={reward_model}"]
    command = [*prefix, "-m", "gemkit", "train", "--method", method, *common, "--lora-r", str(lora_r), *options,
               "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(command, env={**env, **extra_env}, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    (out.parent / f"{out.name}.log").write_text(shlex.join(command) + "\n\n" + done.stdout + done.stderr)
    if done.returncode != 0:
        return Cell(False, f"exit {done.returncode}: {_last_error(done.stdout + done.stderr)}", seconds)
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    steps = int(common[common.index("--steps") + 1])
    if [row["step"] for row in rows] != list(range(1, steps + 1)):
        return Cell(False, f"logged steps {[row['step'] for row in rows]}", seconds)
    loaded = subprocess.run([sys.executable, "-c", "import sys; from gemkit.train import load_trained; "
                             "load_trained(sys.argv[1], device='cpu')", str(out / "checkpoint")],
                            env=env, capture_output=True, text=True, timeout=300)
    if loaded.returncode != 0:
        return Cell(False, f"checkpoint does not load: {_last_error(loaded.stderr)}", seconds)
    return Cell(True, f"loss {rows[-1]['loss']:.4g}", seconds)


def _last_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if "Error" in line]
    return (lines[-1] if lines else text.strip().splitlines()[-1] if text.strip() else "no output")[:160]


def write_report(path: Path, cells: dict[tuple[str, str, int], Cell], launches: list[str], command: str) -> None:
    lines = ["# Every objective under every launch", "",
             f"Reproduce: `{command}` ({_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC). Each cell: full "
             "fine-tuning / LoRA r=4; ✓ = exit 0, every step logged, checkpoint loads (last loss shown).", "",
             "| objective | " + " | ".join(launches) + " |", "|---|" + "---|" * len(launches)]
    methods = sorted({method for method, _, _ in cells})
    for method in methods:
        row = []
        for launch in launches:
            parts = [cells[(method, launch, r)] for r in (0, 4) if (method, launch, r) in cells]
            row.append(" / ".join(f"✓ {c.detail}" if c.ok else f"✗ {c.detail}" for c in parts))
        lines.append(f"| {method} | " + " | ".join(row) + " |")
    failed = sum(not c.ok for c in cells.values())
    lines += ["", f"{len(cells) - failed} of {len(cells)} runs passed; wall time "
              f"{sum(c.seconds for c in cells.values()) / 60:.1f} min.", "",
              "The loss is the last step's. Whether a launch trains exactly like one process on the global "
              "batch is tests/test_distributed.py's check, not this table's: the launches reduce gradients "
              "in different orders, so their weights after step 1 can differ in the last bits, and an "
              "objective that samples in its step (grpo, pro, rm-ppo, sega) can then draw other candidates "
              "from a random model's near-uniform logits at step 2."]
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--methods", default="sft,dpo,ipo,simpo,orpo,kto,pro,rm,rm-ppo,grpo,sega",
                        help="comma-separated objective names")
    parser.add_argument("--launches", default=",".join(LAUNCHES), help="comma-separated: " + ", ".join(LAUNCHES))
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "launch_matrix.md")
    args = parser.parse_args()
    launches = [name for name in args.launches.split(",") if name]
    if unknown := sorted(set(launches) - set(LAUNCHES)):
        parser.error(f"unknown launch(es) {', '.join(unknown)}; choose from {', '.join(LAUNCHES)}")
    model = "random:tiny" if args.device == "cpu" else "random:1b"
    common = ["--model", model, "--device", args.device, "--steps", str(args.steps), "--batch-size", "2",
              "--lr", "1e-4", "--seed", "0", "--quiet"]
    # two processes share the cores: one thread each (see README, "The machine and its traps")
    env = {**os.environ, "OMP_NUM_THREADS": "1" if args.device == "cpu" else os.environ.get("OMP_NUM_THREADS", "4")}
    methods = [name for name in args.methods.split(",") if name]
    cells: dict[tuple[str, str, int], Cell] = {}
    with tempfile.TemporaryDirectory(prefix="gemkit-launch-matrix-") as work:
        reward_model = None
        if "rm-ppo" in methods:
            subprocess.run([sys.executable, "-m", "gemkit", "train", "--method", "rm", *common, "--lora-r", "0",
                            "--out", f"{work}/rm"], env=env, check=True, capture_output=True, timeout=900)
            reward_model = Path(work) / "rm" / "checkpoint"
        total = len(methods) * len(launches) * 2
        for method in methods:
            for launch in launches:
                for lora_r in (0, 4):
                    cell = run_cell(method, launch, lora_r, common, Path(work) / f"{method}-{launch}-r{lora_r}", env,
                                    reward_model)
                    cells[(method, launch, lora_r)] = cell
                    print(f"[{len(cells)}/{total}] {method} {launch} lora_r={lora_r}: "
                          f"{'ok' if cell.ok else 'FAILED'} {cell.detail} ({cell.seconds:.0f} s)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_report(args.out, cells, launches, shlex.join(["python", "benchmarks/launch_matrix.py", *sys.argv[1:]]))
    print(f"wrote {args.out}")
    return 0 if all(cell.ok for cell in cells.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
