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
from gemkit.threads import apply_thread_policy, parse_thread_count, set_wait_policy

#: subcommand modules, in the order `gemkit --help` lists them
COMMAND_MODULES = [
    "gemkit.cli.plugins",
    "gemkit.cli.data",
    "gemkit.cli.models",
    "gemkit.cli.train",
    "gemkit.cli.eval",
    "gemkit.cli.bench",
    "gemkit.cli.report",
    "gemkit.cli.score",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gemkit",
        description="Few-shot preference alignment (GEM: Cognitive Filtering + SEGA), baselines and evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"gemkit {__version__}")
    parser.add_argument("--no-plugins", action="store_true",
                        help="Load no third-party plugins (built-ins only), whatever is installed or GEMKIT_PLUGINS says.")
    parser.add_argument("--threads", type=_thread_count, metavar="N", help=THREADS_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    for subparser in subparsers.choices.values():
        # SUPPRESS: a subcommand without --threads must not overwrite `gemkit --threads N train`'s value
        subparser.add_argument("--threads", type=_thread_count, metavar="N", default=argparse.SUPPRESS,
                               help=THREADS_HELP)
    return parser


THREADS_HELP = ("CPU threads for torch (default: the CPUs this process may use that other jobs leave idle; "
                "OMP_NUM_THREADS/MKL_NUM_THREADS are honoured). The choice is logged in config.json.")


def _thread_count(text: str) -> int:
    try:
        return parse_thread_count(text, "--threads")
    except GemkitError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # First, before anything imports torch: libgomp reads its wait policy once, when it is loaded.
    wait_policy = set_wait_policy()
    if "--no-plugins" in _global_options(argv):
        # Before build_parser: a subcommand may read a registry while adding its arguments.
        from gemkit.manager import build_plugin_manager, set_plugin_manager

        set_plugin_manager(build_plugin_manager(load_entrypoints=False))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        apply_thread_policy(args.threads, wait_policy)
        return int(args.handler(args) or 0)
    except GemkitError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:
        _name_the_plugin(exc)
        raise


def _name_the_plugin(exc: Exception) -> None:
    """Above the traceback of a bug, say which third-party plugin it came from, if any."""
    from gemkit.registry import blame

    try:
        origin = blame(exc)
    except Exception:  # diagnostics must never hide the original error
        return
    if origin is not None:
        print(f"Error: {origin} raised {type(exc).__name__}: {exc}\nThis is a bug in that plugin (traceback "
              f"below); GEMKIT_DISABLE_PLUGINS=<name> blocks it, --no-plugins skips all third-party plugins.",
              file=sys.stderr)


def _global_options(argv: list[str]) -> list[str]:
    """The options before the subcommand name (where argparse accepts the global flags)."""
    head = []
    for token in argv:
        if not token.startswith("-"):
            break
        head.append(token)
    return head


if __name__ == "__main__":
    sys.exit(main())
