"""``gemkit eval --benchmark NAME --model M``: one benchmark, metrics.json + items.jsonl."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gemkit.config import parse_key_values
from gemkit.evaluation import evaluate
from gemkit.models import ModelSpec, load_model
from gemkit.train import load_trained


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("eval", help="Evaluate a model or checkpoint on one benchmark.")
    parser.add_argument("--benchmark", required=True, help="Benchmark plugin name (`gemkit plugins list`).")
    parser.add_argument("--model", default="smollm2-135m", help="Model spec or a gemkit checkpoint directory.")
    parser.add_argument("--ref-model", help="Reference model for implicit rewards (default: base with adapters off).")
    parser.add_argument("--limit", type=int, help="Items to evaluate (seeded sample).")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="A benchmark option; repeatable.")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, help="Directory for metrics.json and items.jsonl.")
    parser.set_defaults(handler=run)


def _load(spec: str, device: str) -> Any:
    if (Path(spec) / "gemkit.json").is_file():
        return load_trained(spec, device=device)
    return load_model(ModelSpec(name=spec, device=device))


def run(args: argparse.Namespace) -> int:
    options: dict[str, Any] = dict(parse_key_values(args.set))
    if args.limit is not None:
        options["limit"] = args.limit
    reference = _load(args.ref_model, args.device) if args.ref_model else None
    result = evaluate(args.benchmark, _load(args.model, args.device), options=options, out_dir=args.out,
                      reference=reference, batch_size=args.batch_size)
    print(f"{args.benchmark} on {args.model} ({len(result.items)} items)")
    for key, value in result.metrics.items():
        print(f"  {key:<24} {value:.4f}")
    print(f"  conventions: {json.dumps(result.conventions, default=str)}")
    print(f"written: {Path(args.out) / 'metrics.json'}, {Path(args.out) / 'items.jsonl'}")
    return 0
