"""Read preference records from JSONL, JSON, CSV, Parquet (any of them gzipped) or a ``datasets`` object.

Every problem is a :class:`~gemkit.errors.DataError` naming the file, the 1-based line (or row)
and the field, raised before anything is written.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs

from gemkit.data.records import PreferencePair, split_conversation
from gemkit.errors import DataError

#: canonical field -> names accepted for it when no explicit mapping is given
ALIASES: dict[str, tuple[str, ...]] = {
    "prompt": ("prompt", "question", "instruction", "query"),
    "chosen": ("chosen", "answer_pos", "response_chosen", "preferred"),
    "rejected": ("rejected", "answer_neg", "response_rejected", "dispreferred"),
    "id": ("id", "uid", "prompt_id"),
    "answer": ("answer", "gold", "target"),
}
BUILTIN_PREFIX = "builtin:"


def _format(path: Path) -> tuple[str, bool]:
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext not in (".jsonl", ".json", ".csv", ".parquet"):
        raise DataError(str(path), f"unsupported file type '{ext or path.name}'; use .jsonl, .json, .csv or "
                                   ".parquet (optionally .gz)")
    return ext, gz


def _read_text(path: Path, gz: bool) -> str:
    raw = path.read_bytes()
    if gz:
        try:
            raw = gzip.decompress(raw)
        except OSError as exc:
            raise DataError(str(path), f"not a valid gzip file ({exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(str(path), f"undecodable bytes (not UTF-8) at byte {exc.start}", line=line) from None


def read_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_or_row_number, row)`` for every record of a data file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "file not found")
    ext, gz = _format(path)
    if ext == ".parquet":
        yield from _parquet_rows(path, gz)
        return
    text = _read_text(path, gz)
    if not text.strip():
        raise DataError(str(path), "the file is empty")
    if ext == ".jsonl":
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(str(path), f"malformed JSON ({exc.msg} at column {exc.colno})", line=number) from None
            if not isinstance(row, dict):
                raise DataError(str(path), f"expected a JSON object, got {type(row).__name__}", line=number)
            yield number, row
    elif ext == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(str(path), f"malformed JSON ({exc.msg})", line=exc.lineno) from None
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise DataError(str(path), "expected a JSON list of objects (or {\"data\": [...]})")
        for number, row in enumerate(data, 1):
            if not isinstance(row, dict):
                raise DataError(str(path), f"item {number} is {type(row).__name__}, expected an object", line=number)
            yield number, row
    else:
        reader = csv.DictReader(io.StringIO(text))
        for number, row in enumerate(reader, 2):  # line 1 is the header
            yield number, dict(row)


def _parquet_rows(path: Path, gz: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        source: Any = io.BytesIO(gzip.decompress(path.read_bytes())) if gz else str(path)
        table = pq.read_table(source)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(str(path), f"unreadable Parquet file ({exc})") from None
    for number, row in enumerate(table.to_pylist(), 1):
        yield number, row


def require_fields(row: dict[str, Any], fields: list[str] | tuple[str, ...], path: str, line: int) -> None:
    """Raise a DataError naming the first missing field and the fields the row does have."""
    for name in fields:
        if name not in row:
            raise DataError(path, f"missing (row has: {', '.join(sorted(row)) or 'nothing'})", line=line, field=name)


def _resolve(row: dict[str, Any], canonical: str, mapping: dict[str, str]) -> str | None:
    if canonical in mapping:
        return mapping[canonical] if mapping[canonical] in row else None
    return next((name for name in ALIASES[canonical] if name in row), None)


def _text_field(value: Any, path: str, line: int, field: str, allow_messages: bool) -> Any:
    if isinstance(value, str):
        if not value.strip():
            raise DataError(path, "empty", line=line, field=field)
        return value
    if allow_messages and isinstance(value, list) and value and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value):
        return value
    kind = "null" if value is None else type(value).__name__
    raise DataError(path, f"expected a string{' or a chat message list' if allow_messages else ''}, got {kind}",
                    line=line, field=field)


def pair_from_row(row: dict[str, Any], path: str, line: int, mapping: dict[str, str] | None = None) -> PreferencePair:
    """One validated PreferencePair from a raw row (message-list responses are split)."""
    mapping = mapping or {}
    names = {key: _resolve(row, key, mapping) for key in ALIASES}
    for key in ("chosen", "rejected"):
        if names[key] is None:
            expected = mapping.get(key, "/".join(ALIASES[key]))
            raise DataError(path, f"missing (expected '{expected}')", line=line, field=mapping.get(key, key))
    chosen = _text_field(row[names["chosen"]], path, line, names["chosen"], True)  # type: ignore[index]
    rejected = _text_field(row[names["rejected"]], path, line, names["rejected"], True)  # type: ignore[index]
    prompt = None
    if names["prompt"] is not None:
        prompt = _text_field(row[names["prompt"]], path, line, names["prompt"], True)
    try:
        prompt_c, chosen_text = split_conversation(prompt, chosen)
        _, rejected_text = split_conversation(prompt, rejected)
    except ValueError as exc:
        raise DataError(path, str(exc), line=line, field=names["chosen"]) from None
    if not prompt_c:
        raise DataError(path, "missing (no prompt field and the responses carry no conversation)", line=line,
                        field=mapping.get("prompt", "prompt"))
    if chosen_text.strip() == rejected_text.strip():
        raise DataError(path, "chosen and rejected are identical; a preference needs two different answers",
                        line=line, field=names["rejected"])
    record_id = str(row[names["id"]]) if names["id"] is not None and row[names["id"]] is not None else f"line-{line}"
    answer = row[names["answer"]] if names["answer"] is not None else None
    known = {n for n in names.values() if n}
    metadata = {k: v for k, v in row.items() if k not in known}
    return PreferencePair(prompt_c, chosen_text, rejected_text, id=record_id,
                          answer=None if answer is None else str(answer), metadata=metadata)


def read_pairs(path: str | Path, mapping: dict[str, str] | None = None, *, allow_duplicate_ids: bool = False
               ) -> list[PreferencePair]:
    """All preference pairs of a file; duplicate ids are an error naming both lines."""
    pairs: list[PreferencePair] = []
    first_line: dict[str, int] = {}
    for line, row in read_rows(path):
        pair = pair_from_row(row, str(path), line, mapping)
        if pair.id in first_line and not allow_duplicate_ids:
            raise DataError(str(path), f"duplicate id '{pair.id}' (first seen on line {first_line[pair.id]})",
                            line=line, field="id")
        first_line.setdefault(pair.id, line)
        pairs.append(pair)
    if not pairs:
        raise DataError(str(path), "no records")
    return pairs


def pairs_from_dataset(dataset: Any, mapping: dict[str, str] | None = None, name: str = "<dataset>"
                       ) -> list[PreferencePair]:
    """Pairs from a Hugging Face ``datasets.Dataset`` (rows are numbered from 1)."""
    return [pair_from_row(dict(row), name, i, mapping) for i, row in enumerate(dataset, 1)]


def load_pairs(source: str, mapping: dict[str, str] | None = None) -> list[PreferencePair]:
    """A file path, or ``builtin:arithmetic`` (optionally ``builtin:arithmetic?n=64&seed=3``)."""
    if source.startswith(BUILTIN_PREFIX):
        from gemkit.data.arithmetic import builtin_train_pairs

        name, _, query = source[len(BUILTIN_PREFIX):].partition("?")
        if name != "arithmetic":
            raise DataError(source, "unknown built-in dataset; available: builtin:arithmetic")
        params = {k: int(v[-1]) for k, v in parse_qs(query).items()}
        unknown = set(params) - {"n", "seed"}
        if unknown:
            raise DataError(source, f"unknown parameter(s) {sorted(unknown)}; use n and seed")
        return builtin_train_pairs(params.get("n", 256), params.get("seed", 0))
    return read_pairs(source, mapping)


def parse_mapping(text: str | None) -> dict[str, str]:
    """``"prompt=question,chosen=answer_pos"`` -> ``{"prompt": "question", "chosen": "answer_pos"}``."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ALIASES:
            raise DataError("--map", f"expected FIELD=COLUMN with FIELD in {', '.join(ALIASES)}, got {part!r}")
        out[key.strip()] = value.strip()
    return out
