"""Benchmark data: the upstream dataset from the Hub by default, or a local file in its schema.

Every adapter names its Hub id, config and split and the fields it needs. ``--data PATH`` reads a
local JSONL/JSON/CSV/Parquet file (optionally gzipped) in the same schema instead. The schema is
checked on every row before anything is scored, and ``--limit N`` takes a seeded sample (kept in
file order, so item ids and outputs line up with the file).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from gemkit.data.readers import read_rows, require_fields
from gemkit.errors import DataError


@dataclass
class DataOptions:
    """Options every dataset-backed benchmark has (mixed into its Config)."""

    data: str | None = field(default=None, metadata={
        "help": "Local file in the upstream schema (JSONL/JSON/CSV/Parquet, .gz ok); default: the Hub dataset."})
    limit: int | None = field(default=None, metadata={"help": "Evaluate a seeded sample of this many items."})
    seed: int = field(default=0, metadata={"help": "Seed of the --limit sample."})
    split: str | None = field(default=None, metadata={"help": "Hub split (default: the benchmark's own)."})


@dataclass(frozen=True)
class Source:
    """Where a benchmark's data lives upstream and what every row must carry."""

    hub_id: str
    config: str | None
    split: str
    fields: tuple[str, ...]


def load_rows(source: Source, options: DataOptions,
              columns: dict[str, str] | None = None) -> list[tuple[int, dict[str, Any]]]:
    """``(line, row)`` of the selected items: all rows checked against ``source.fields`` first.
    ``columns`` maps a field to the column name of another upstream release of the same data (e.g.
    ``best_answer`` ← TruthfulQA.csv's ``Best Answer``), copied across when the field is absent."""
    if options.data:
        where = options.data
        rows = list(read_rows(options.data))
    else:
        split = options.split or source.split
        where = f"{source.hub_id}" + (f" ({source.config})" if source.config else "") + f" split {split}"
        rows = list(enumerate(_hub_rows(source, split), 1))
    if not rows:
        raise DataError(where, "no records")
    for line, row in rows:
        for name, column in (columns or {}).items():
            if name not in row and column in row:
                row[name] = row[column]
        require_fields(row, source.fields, where, line)
        for name in source.fields:  # CSV cells hold JSON text for nested fields
            row[name] = _decode_nested(row[name])
    return sample(rows, options.limit, options.seed)


def sample(rows: list[Any], limit: int | None, seed: int) -> list[Any]:
    """A seeded sample of ``limit`` rows in their original order (all rows when limit is None or larger)."""
    if limit is None or limit >= len(rows):
        return list(rows)
    if limit < 1:
        raise DataError("--limit", f"must be >= 1, got {limit}")
    keep = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in keep]


def _decode_nested(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _hub_rows(source: Source, split: str) -> list[dict[str, Any]]:
    import datasets

    try:
        dataset = datasets.load_dataset(source.hub_id, source.config, split=split)
    except Exception as exc:  # offline, gated, renamed: say how to run without the Hub
        raise DataError(source.hub_id, f"could not load split '{split}' from the Hugging Face Hub "
                                       f"({type(exc).__name__}: {str(exc)[:200]}); download it once, or pass "
                                       f"--data PATH with a local copy in the same schema") from None
    return [dict(row) for row in dataset]


def text_field(row: dict[str, Any], name: str, where: str, line: int) -> str:
    """A non-empty string field, else a DataError naming it."""
    value = row.get(name)
    if not isinstance(value, str) or not value.strip():
        kind = "empty" if isinstance(value, str) else f"expected a string, got {type(value).__name__}"
        raise DataError(where, kind, line=line, field=name)
    return value


def row_id(row: dict[str, Any], key: str | None, line: int, prefix: str = "line") -> str:
    value = row.get(key) if key else None
    return str(value) if value is not None and value != "" else f"{prefix}-{line}"
