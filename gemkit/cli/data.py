"""``gemkit data validate FILE`` and ``gemkit data overlap TRAIN TEST``."""
from __future__ import annotations

import argparse
import json
from typing import Any

from gemkit.data.overlap import prompt_overlap
from gemkit.data.readers import load_pairs, parse_mapping
from gemkit.data.validate import summarise
from gemkit.models import load_tokenizer


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("data", help="Check preference data files.")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    val = sub.add_parser("validate", help="Parse a file; exit 0 with a summary, or 2 naming file, line and field.")
    val.add_argument("file", help="JSONL/JSON/CSV/Parquet (optionally .gz) or builtin:arithmetic.")
    val.add_argument("--map", help="Field mapping, e.g. prompt=question,chosen=answer_pos,rejected=answer_neg.")
    val.add_argument("--model", default="smollm2-135m", help="Tokenizer for the length statistics.")
    val.add_argument("--max-length", type=int, help="Also count pairs longer than this many tokens.")
    val.add_argument("--json", action="store_true", help="Print the summary as JSON.")
    val.set_defaults(handler=run_validate)
    ovl = sub.add_parser("overlap", help="Prompt overlap between two sets. Exit 0: none; 1: overlap found.")
    ovl.add_argument("train")
    ovl.add_argument("test")
    ovl.add_argument("--map", help="Field mapping applied to both files.")
    ovl.add_argument("--json", action="store_true")
    ovl.set_defaults(handler=run_overlap)


def run_validate(args: argparse.Namespace) -> int:
    pairs = load_pairs(args.file, parse_mapping(args.map))
    summary = summarise(pairs, load_tokenizer(args.model), args.max_length)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{args.file}: OK, {summary['rows']} pairs, {summary['duplicate_prompts']} duplicate prompts, "
          f"{summary['with_gold_answer']} with gold answers")
    for field, stats in summary["tokens"].items():
        print(f"  {field:<9} tokens: min {stats['min']}  mean {stats['mean']}  p95 {stats['p95']}  max {stats['max']}")
    if "over_max_length" in summary:
        print(f"  over {args.max_length} tokens: {summary['over_max_length']}")
    return 0


def run_overlap(args: argparse.Namespace) -> int:
    mapping = parse_mapping(args.map)
    report = prompt_overlap(load_pairs(args.train, mapping), load_pairs(args.test, mapping))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"exact prompt overlap: {len(report.exact)}; normalised-only overlap: {len(report.normalised)}")
        for kind, rows in (("exact", report.exact), ("normalised", report.normalised)):
            for train_id, test_id in rows:
                print(f"  {kind}: train {train_id} = test {test_id}")
    return 0 if report.clean else 1
