"""``gemkit data validate FILE`` and ``gemkit data overlap TRAIN TEST``."""
from __future__ import annotations

import argparse
import json
from typing import Any

from gemkit.data.overlap import prompt_overlap
from gemkit.data.readers import load_pairs, parse_mapping, read_prompts
from gemkit.data.validate import format_summary, summarise
from gemkit.errors import ConfigError

SOURCES = "JSONL/JSON/CSV/Parquet (optionally .gz) or builtin:arithmetic[?n=..&seed=..&split=train|heldout]"
MAP_HELP = "Column mapping, e.g. prompt=question,chosen=answer_pos,rejected=answer_neg."


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("data", help="Check preference data files.")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    val = sub.add_parser(
        "validate", help="Parse a file and summarise it; nothing is written.",
        description="Parse every record. Exit 0 and print a summary (rows, duplicate prompts, token lengths), "
                    "or exit 2 with 'Error: FILE, line N: field 'F': problem' at the first bad record.")
    val.add_argument("file", help=SOURCES)
    val.add_argument("--map", help=MAP_HELP)
    val.add_argument("--model", default="smollm2-135m", help="Tokenizer for the length statistics (default: the "
                                                             "embedded smollm2-135m).")
    val.add_argument("--max-length", type=int, help="Also count pairs whose prompt + longer response exceeds this "
                                                    "many tokens.")
    val.add_argument("--allow-identical", action="store_true", help="Accept rows whose chosen equals rejected.")
    val.add_argument("--json", action="store_true", help="Print the summary as JSON.")
    val.set_defaults(handler=run_validate)
    ovl = sub.add_parser(
        "overlap", help="Prompt overlap between a train and a test set. Exit 0: none; 1: overlap found.",
        description="Compare prompts exactly and after normalising (NFKC, case-folded, punctuation removed, "
                    "whitespace collapsed). Exit status: 0 no overlap, 1 overlap found, 2 unreadable input. "
                    "TEST needs only a prompt column (e.g. question).")
    ovl.add_argument("train", help=SOURCES)
    ovl.add_argument("test", help=SOURCES)
    ovl.add_argument("--map", help=MAP_HELP + " Applied to both files.")
    ovl.add_argument("--json", action="store_true", help="Print counts and offending ids as JSON.")
    ovl.set_defaults(handler=run_overlap)


def run_validate(args: argparse.Namespace) -> int:
    if args.max_length is not None and args.max_length < 1:
        raise ConfigError(f"--max-length must be >= 1, got {args.max_length}")
    pairs = load_pairs(args.file, parse_mapping(args.map), allow_identical=args.allow_identical)
    from gemkit.models import load_tokenizer  # only after the data parsed: a bad file fails fast

    summary = summarise(pairs, load_tokenizer(args.model), args.max_length, source=args.file)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def run_overlap(args: argparse.Namespace) -> int:
    mapping = parse_mapping(args.map)
    report = prompt_overlap(read_prompts(args.train, mapping), read_prompts(args.test, mapping))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"{report.test_size} test prompts against {report.train_size} train prompts: "
              f"{len(report.test_ids('exact'))} exact overlap, {len(report.test_ids('normalised'))} only after "
              f"normalising")
        for kind in ("exact", "normalised"):
            for train_id, test_id in getattr(report, kind):
                print(f"  {kind:<10} train {train_id}  test {test_id}")
    return 0 if report.clean else 1
