"""``gemkit`` command line. Each subcommand lives in its own module with ``add_parser``/``run``.

The only place that catches exceptions: a :class:`~gemkit.errors.GemkitError` prints
``Error: <message>`` on stderr and exits 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from gemkit import __version__
from gemkit.errors import GemkitError

#: subcommand modules, in the order `gemkit --help` lists them
COMMAND_MODULES = [
    "gemkit.cli.plugins",
    "gemkit.cli.data",
    "gemkit.cli.models",
    "gemkit.cli.train",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gemkit",
        description="Few-shot preference alignment (GEM: Cognitive Filtering + SEGA), baselines and evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"gemkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except GemkitError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
