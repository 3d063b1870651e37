"""``gemkit report RUN_DIR``: rebuild tables, statistics, figures and HTML from a run's data."""
from __future__ import annotations

import argparse
from typing import Any

from gemkit.report.build import FORMATS, build_report


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("report", help="Build the report of a bench run (Markdown, LaTeX, CSV, JSON, HTML).")
    parser.add_argument("run_dir", help="A directory written by `gemkit bench`.")
    parser.add_argument("--out", help="Output directory (default RUN_DIR/report).")
    parser.add_argument("--baseline", default="dpo", help="Method the paired tests compare against.")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"Comma-separated subset of {','.join(FORMATS)}.")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    unknown = set(formats) - set(FORMATS)
    if unknown:
        from gemkit.errors import ConfigError

        raise ConfigError(f"unknown format(s) {sorted(unknown)}; choose from {', '.join(FORMATS)}")
    out = build_report(args.run_dir, args.out, baseline=args.baseline, formats=formats)
    print(f"Report written to {out}")
    return 0
