"""Generate the README's CLI reference from the argparse parsers, so it cannot drift.

    python docs/gen_cli_reference.py            # rewrite the section between the markers in README.md
    python docs/gen_cli_reference.py --check    # exit 1 if README.md is out of date (CI, tests)
    python docs/gen_cli_reference.py --stdout   # print the generated Markdown

The section is everything between ``<!-- cli-reference:start -->`` and ``<!-- cli-reference:end -->``.
Only built-in commands are documented: plugins are switched off while generating, so what a
locally installed plugin adds never leaks into the README.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _flag(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest.upper()}`"
    names = ", ".join(action.option_strings)
    if action.nargs == 0:
        return f"`{names}`"
    metavar = action.metavar or (action.dest.upper() if not action.choices else "{" + ",".join(map(str, action.choices)) + "}")
    return f"`{names} {metavar}`"


def _row(action: argparse.Action) -> str:
    help_text = (action.help or "").replace("|", "\\|").replace("\n", " ")
    if action.choices and not isinstance(action, argparse._SubParsersAction) and action.option_strings == []:
        help_text += f" One of: {', '.join(map(str, action.choices))}."
    if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) and action.nargs != 0:
        help_text += f" Default: `{action.default}`."
    if getattr(action, "required", False) and action.option_strings:
        help_text += " Required."
    return f"| {_flag(action)} | {help_text.strip()} |"


def _commands(parser: argparse.ArgumentParser, path: str, summary: str | None):
    """Yield (command path, one-line help, parser) for every leaf command, depth first."""
    sub = _subparsers(parser)
    if sub is None:
        yield path, summary, parser
        return
    helps = {choice.dest: choice.help for choice in sub._choices_actions}
    for name, child in sub.choices.items():
        yield from _commands(child, f"{path} {name}", helps.get(name))


def render() -> str:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from gemkit.cli import build_parser

    saved = os.environ.get("GEMKIT_PLUGINS")
    os.environ["GEMKIT_PLUGINS"] = ""  # built-in commands only, whatever is installed here
    try:
        parser = build_parser()
    finally:
        if saved is None:
            del os.environ["GEMKIT_PLUGINS"]
        else:
            os.environ["GEMKIT_PLUGINS"] = saved
    lines = ["Generated from the argparse parsers by `python docs/gen_cli_reference.py`; "
             "`tests/test_cli_reference.py` fails when it is out of date.", "",
             "Global options (before the command):", "", "| option | meaning |", "|---|---|"]
    lines += [_row(a) for a in parser._actions if a.option_strings and a.dest != "help"]
    for path, summary, leaf in _commands(parser, "gemkit", None):
        lines += ["", f"### `{path}`", ""]
        if summary:
            lines += [summary.strip(), ""]
        actions = [a for a in leaf._actions if a.dest != "help"]
        if actions:
            lines += ["| argument | meaning |", "|---|---|"] + [_row(a) for a in actions]
    return "\n".join(lines) + "\n"


def splice(readme: str, section: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md lacks the markers {START} / {END}")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{section}{END}{tail}"


def main(argv: list[str]) -> int:
    section = render()
    if "--stdout" in argv:
        print(section, end="")
        return 0
    current = README.read_text()
    wanted = splice(current, section)
    if "--check" in argv:
        if current != wanted:
            print("README.md CLI reference is out of date; run: python docs/gen_cli_reference.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
