"""``gemkit eval --benchmark NAME --model M|CHECKPOINT [--data PATH] [--limit N] [--num-fewshot K]
[--generator hf|vllm] --out DIR``.

Prints a table and writes ``metrics.json`` (aggregate, conventions) and ``items.jsonl`` (one row
per item) atomically.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gemkit.config import parse_key_values
from gemkit.evaluation import evaluate
from gemkit.generation import GENERATORS, check_generator
from gemkit.models import ModelSpec, load_model
from gemkit.registry import registry
from gemkit.train import load_trained


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("eval", help="Evaluate a model or checkpoint on one benchmark.")
    parser.add_argument("--benchmark", required=True, help="Benchmark plugin name (`gemkit plugins list`).")
    parser.add_argument("--model", default="smollm2-135m", help="Model spec or a gemkit checkpoint directory.")
    parser.add_argument("--ref-model", help="Reference model for implicit rewards (default: base with adapters off).")
    parser.add_argument("--data", help="Local file in the benchmark's upstream schema (JSONL/JSON/CSV/Parquet, .gz).")
    parser.add_argument("--limit", type=int, help="Items to evaluate (seeded sample).")
    parser.add_argument("--num-fewshot", type=int, metavar="K",
                        help="Solved examples shown as earlier chat turns before each question (gsm8k, math, "
                             "truthfulqa; default 0).")
    parser.add_argument("--fewshot-data", metavar="PATH",
                        help="Local file of few-shot examples in the upstream schema (gsm8k, math; default: the "
                             "Hub's train split; truthfulqa draws from the evaluated file).")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="A benchmark option; repeatable.")
    parser.add_argument("--judge", help="Judge plugin for judged benchmarks (mt-bench): local, openai, ...")
    parser.add_argument("--judge-endpoint", help="Base URL of an OpenAI-compatible judge API (key from $OPENAI_API_KEY "
                                                 "or the env var named by --judge-key-env).")
    parser.add_argument("--judge-model", help="Judge model name (openai) or model spec (local).")
    parser.add_argument("--judge-key-env", help="Environment variable holding the judge API key.")
    parser.add_argument("--generator", choices=GENERATORS, default="hf",
                        help="Engine of the generative benchmarks (arithmetic, gsm8k, math, mt-bench, truthfulqa, "
                             "scorer-diagnostics): hf (transformers) or vllm (pip install gemkit[vllm]).")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, help="Directory for metrics.json and items.jsonl.")
    parser.set_defaults(handler=run)


def _load(spec: str, device: str, task: str = "causal-lm") -> Any:
    if (Path(spec) / "gemkit.json").is_file():
        return load_trained(spec, device=device)
    return load_model(ModelSpec(name=spec, device=device, task=task))  # type: ignore[arg-type]


def benchmark_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = dict(parse_key_values(args.set))
    for key in ("data", "limit", "num_fewshot", "fewshot_data", "judge"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    judge_options = {k: v for k, v in (("endpoint", args.judge_endpoint), ("model", args.judge_model),
                                       ("key_env", args.judge_key_env)) if v is not None}
    if judge_options:
        options["judge_options"] = judge_options
    return options


def run(args: argparse.Namespace) -> int:
    options = benchmark_options(args)
    registry("benchmark").get(args.benchmark).make_config(options)  # every option checked before a model loads
    check_generator(args.generator)  # vllm missing: the install hint now, not after loading the model
    reference = _load(args.ref_model, args.device) if args.ref_model else None
    result = evaluate(args.benchmark, _load(args.model, args.device), options=options, out_dir=args.out,
                      reference=reference, batch_size=args.batch_size, generator=args.generator)
    print(f"{args.benchmark} on {args.model} ({len(result.items)} items)")
    print(result.table())
    print("conventions: " + ", ".join(f"{k}={v}" for k, v in result.conventions.items() if not isinstance(v, dict)))
    print(f"written: {Path(args.out) / 'metrics.json'}, {Path(args.out) / 'items.jsonl'}")
    return 0
