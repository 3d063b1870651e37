"""``gemkit bench --methods sega,dpo``: train every method on the same data, evaluate, report."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from gemkit.config import config_from_dict
from gemkit.errors import ConfigError
from gemkit.generation import GENERATORS
from gemkit.report.build import build_report
from gemkit.runner.bench import BenchConfig, run_bench


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="Train and evaluate several methods on the same data; write a report.")
    parser.add_argument("--methods", help="Comma-separated objectives, e.g. sega,dpo.")
    parser.add_argument("--benchmarks", help="Comma-separated benchmarks (default: arithmetic,arithmetic-pref).")
    parser.add_argument("--model", help="Base model (default smollm2-135m, the embedded model).")
    parser.add_argument("--train", help="Training pairs file or builtin:arithmetic[?level=1|2] (default: level 1).")
    parser.add_argument("--shots", help="Comma-separated training-set sizes, e.g. 250,500,3000.")
    parser.add_argument("--seeds", help="Comma-separated seeds, e.g. 1,2,3.")
    parser.add_argument("--steps", type=int, help="Optimiser steps per method.")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--lora-r", type=int, help="LoRA rank (0: full fine-tuning).")
    parser.add_argument("--limit", type=int, help="Items per benchmark.")
    parser.add_argument("--scorer", help="Scorer plugin for sega (default entropy).")
    parser.add_argument("--generator", choices=GENERATORS,
                        help="Engine of the generative benchmarks: hf (transformers, the default) or vllm.")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N.")
    parser.add_argument("--devices", help="Run independent cells in parallel on a local Ray session, one cell at a "
                                          "time per entry: CUDA indices (0,1,...) or cpu (may repeat, e.g. cpu,cpu).")
    parser.add_argument("--ray-address", help="Run the cells as tasks on an existing Ray cluster (auto, "
                                              "ray://head:10001, ...); --out must be on storage every node mounts.")
    parser.add_argument("--cell-cpus", type=int, help="With --ray-address on a cluster without GPUs: CPUs (and "
                                                      "torch threads) per cell (default 1).")
    parser.add_argument("--out", help="Run directory (default runs/bench).")
    parser.add_argument("--baseline", default="base",
                        help="Method the paired tests compare against (default: the untrained base model).")
    parser.add_argument("--no-base", action="store_true", help="Skip evaluating the untrained base model.")
    parser.add_argument("--include-sft", action="store_true",
                        help="Also train sft once per (shots, seed) and report it as its own row (the default; "
                             "implied by --methods sft and by mt-bench, whose baseline it is).")
    parser.add_argument("--no-sft", action="store_true", help="No SFT row (unless a method or benchmark needs it).")
    parser.add_argument("--resume", action="store_true", help="Skip finished cells of an existing run.")
    parser.add_argument("-c", "--config", help="YAML with the same keys (methods, benchmarks, shots, …); flags win.")
    parser.set_defaults(handler=run)


def resolve(args: argparse.Namespace) -> BenchConfig:
    """Dataclass defaults < YAML < flags; unknown YAML keys are errors that list the valid keys."""
    values: dict[str, Any] = {}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping of bench options at the top level, got {type(values).__name__}")
    flags = {"methods": args.methods and _csv(args.methods), "benchmarks": args.benchmarks and _csv(args.benchmarks),
             "model": args.model, "train": args.train, "steps": args.steps, "batch_size": args.batch_size,
             "lr": args.lr, "lora_r": args.lora_r, "limit": args.limit, "scorer": args.scorer,
             "generator": args.generator, "device": args.device, "out": args.out, "shots": args.shots and _csv(args.shots), "seeds": args.seeds and _csv(args.seeds),
             "devices": args.devices and _csv(args.devices), "ray_address": args.ray_address,
             "cell_cpus": args.cell_cpus, "include_base": False if args.no_base else None,
             "include_sft": True if args.include_sft else (False if args.no_sft else None)}
    values.update({k: v for k, v in flags.items() if v is not None})
    where = f"bench config ({args.config})" if args.config else "bench config"
    return config_from_dict(BenchConfig, values, where=where)


def run(args: argparse.Namespace) -> int:
    config = resolve(args)
    out = run_bench(config, resume=args.resume)
    report = build_report(out, baseline=args.baseline)
    text = (report / "report.md").read_text()
    print("\n" + text.split("## Results\n", 1)[-1].split("\n## ", 1)[0].strip() + "\n")
    print(f"Report: {report / 'report.html'} (also report.md, table.tex, table.csv, table.json, figures/)")
    return 0
