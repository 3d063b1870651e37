"""``gemkit report RUN_DIR``: rebuild tables, statistics, figures and HTML from a run's data."""
from __future__ import annotations

import argparse
from typing import Any

from gemkit.report.build import FORMATS, OUTPUT_NAMES, build_report, parse_formats


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("report", help="Build the report of a bench run (Markdown, LaTeX, CSV, JSON, HTML).")
    parser.add_argument("run_dir", help="A directory written by `gemkit bench`.")
    parser.add_argument("--out", help="Output directory (default RUN_DIR/report).")
    parser.add_argument("--baseline", default="base",
                        help="Method the paired tests compare against (default: the untrained base model).")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"Comma-separated subset of {','.join(FORMATS)}.")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    formats = parse_formats(args.formats)
    # The default baseline may be absent from a run (then there are no paired tests); a baseline
    # the user named must exist, so a typo is an error rather than a silently empty comparison.
    out = build_report(args.run_dir, args.out, baseline=args.baseline, formats=formats,
                       require_baseline=args.baseline != "base")
    print(f"Report written to {out}: {', '.join(OUTPUT_NAMES[f] for f in formats)}, figures/")
    if "md" in formats:
        text = (out / OUTPUT_NAMES["md"]).read_text()
        print(text.split("## Results\n", 1)[-1].split("\n## ", 1)[0].strip())
    return 0
