"""``gemkit plugins list [--json]``: every plugin component, its kind and the distribution it came from."""
from __future__ import annotations

import argparse
import json
from typing import Any

from gemkit.cli import plugins_new
from gemkit.manager import get_plugin_manager
from gemkit.registry import KINDS, registry


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("plugins", help="List installed plugins and their components.")
    sub = parser.add_subparsers(dest="plugins_command", metavar="ACTION", required=True)
    lst = sub.add_parser("list", help="Show kind, name, description and distribution of every component.")
    lst.add_argument("--json", action="store_true", help="Print a JSON list of objects instead of a table.")
    lst.set_defaults(handler=run_list)
    plugins_new.add_subparser(sub)


def plugin_rows() -> list[dict[str, Any]]:
    """One row per component, plus one per plugin that failed to load or register."""
    pm = get_plugin_manager()
    rows: list[dict[str, Any]] = []
    for kind in KINDS:
        reg = registry(kind)
        for name in reg.names():
            entry = reg.entries[name]
            rows.append({
                "kind": kind, "name": name, "description": entry.description, "plugin": entry.plugin,
                "distribution": entry.distribution, "version": entry.version, "aliases": list(entry.aliases),
                "error": None,
            })
    for name, record in pm.load_records.items():
        if record.error:
            rows.append({"kind": None, "name": name, "description": "", "plugin": name,
                         "distribution": record.distribution, "version": record.version, "aliases": [],
                         "error": record.error})
        elif record.blocked:
            rows.append({"kind": None, "name": name, "description": "blocked", "plugin": name,
                         "distribution": record.distribution, "version": record.version, "aliases": [],
                         "error": None, "blocked": True})
    return rows


def run_list(args: argparse.Namespace) -> int:
    rows = plugin_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    widths = {"kind": 9, "name": 16, "distribution": 26}
    print(f"{'KIND':<{widths['kind']}} {'NAME':<{widths['name']}} {'DISTRIBUTION':<{widths['distribution']}} DESCRIPTION")
    for row in rows:
        dist = f"{row['distribution']} {row['version'] or ''}".strip()
        if row["error"]:
            print(f"{'(failed)':<{widths['kind']}} {row['name']:<{widths['name']}} {dist:<{widths['distribution']}} ERROR: {row['error']}")
        else:
            print(f"{row['kind'] or '(blocked)':<{widths['kind']}} {row['name']:<{widths['name']}} {dist:<{widths['distribution']}} {row['description']}")
    return 0
