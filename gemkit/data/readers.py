"""Read preference records from JSONL, JSON, CSV, Parquet (any of them gzipped) or a ``datasets`` object.

Every problem is a :class:`~gemkit.errors.DataError` naming the file, the 1-based line (the row
for CSV, Parquet and JSON arrays) and the field, raised before anything is written. JSONL is read
one line at a time, so a huge file or a single 50 MB line costs memory in proportion to that line.
"""
from __future__ import annotations

import csv
import difflib
import gzip
import io
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from gemkit.data.records import PreferencePair, split_conversation
from gemkit.errors import DataError

#: canonical field -> names accepted for it when no explicit mapping is given, in order of preference
ALIASES: dict[str, tuple[str, ...]] = {
    "prompt": ("prompt", "question", "instruction", "query"),
    "chosen": ("chosen", "answer_pos", "response_chosen", "preferred", "output"),
    "rejected": ("rejected", "answer_neg", "response_rejected", "dispreferred"),
    "id": ("id", "uid", "prompt_id"),
    "answer": ("answer", "gold", "target"),
    # Which of the two response columns is preferred (LLMBar's output_1/output_2 + label ∈ {1, 2}).
    "label": ("label",),
}
#: label value meaning "the column mapped to chosen wins" and "the column mapped to rejected wins"
LABEL_VALUES = ("1", "2")
ROLES = ("system", "user", "assistant", "tool")
BUILTIN_PREFIX = "builtin:"
FORMATS = (".jsonl", ".json", ".csv", ".parquet")
_GZIP_ERRORS = (OSError, EOFError, zlib.error)


def _format(path: Path) -> tuple[str, bool]:
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    ext = (suffixes[:-1] if gz else suffixes)[-1:] or [""]
    if ext[0] not in FORMATS:
        raise DataError(str(path), f"unsupported file type '{ext[0] or path.name}'; expected one of "
                                   f"{', '.join(FORMATS)} (optionally gzipped, e.g. .jsonl.gz)")
    return ext[0], gz


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(str(path), "file not found")
    if not path.is_file():
        raise DataError(str(path), "not a regular file (a directory?); give a data file")


def _decode(raw: bytes, path: Path, first_line: int = 1) -> str:
    try:
        return raw.decode("utf-8-sig" if first_line == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + raw[:exc.start].count(b"\n")
        raise DataError(str(path), f"undecodable bytes (not UTF-8) at byte {exc.start} of the line; "
                                   "re-save the file as UTF-8", line=line) from None


def _read_bytes(path: Path, gz: bool) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if gz else raw
    except _GZIP_ERRORS as exc:
        raise DataError(str(path), f"cannot read{' gzip data' if gz else ''} ({exc})") from None


def _parse_json(text: str, path: Path, line: int | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f" at column {exc.colno}" if line is not None else ""
        raise DataError(str(path), f"malformed JSON ({exc.msg}{where})",
                        line=line if line is not None else exc.lineno) from None
    except (ValueError, RecursionError) as exc:  # over-long integers, absurd nesting
        raise DataError(str(path), f"unreadable JSON value ({type(exc).__name__}: {str(exc)[:120]})",
                        line=line) from None


def read_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_or_row_number, row)`` for every record of a data file, in any supported format.

    A directory of ``*.json`` files, one JSON object each (the MATH release's ``test/<subject>/<n>.json``
    layout), is read as one row per file in sorted path order, numbered from 1.
    """
    path = Path(path)
    if path.is_dir():
        yield from _directory_rows(path)
        return
    _check_file(path)
    ext, gz = _format(path)
    if ext == ".jsonl":
        rows: Iterable[tuple[int, dict[str, Any]]] = _jsonl_rows(path, gz)
    elif ext == ".parquet":
        rows = _parquet_rows(path, gz)
    else:
        raw = _read_bytes(path, gz)
        if not raw.strip():
            raise DataError(str(path), "the file is empty")
        text = _decode(raw, path)
        rows = _json_rows(text, path) if ext == ".json" else _csv_rows(text, path)
    empty = True
    for item in rows:
        empty = False
        yield item
    if empty:
        raise DataError(str(path), "the file is empty (no records)")


def _directory_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    files = sorted(p for p in path.rglob("*.json") if p.is_file())
    if not files:
        raise DataError(str(path), "not a regular file but a directory with no *.json files; give a data file "
                                   "(or a directory of one-object JSON files, as the MATH release is laid out)")
    for number, file in enumerate(files, 1):
        row = _parse_json(_decode(_read_bytes(file, False), file), file, None)
        if not isinstance(row, dict):
            raise DataError(str(file), f"expected one JSON object per file in a directory, got {_kind(row)}")
        yield number, row


def _jsonl_rows(path: Path, gz: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    number = 0
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
            for number, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                row = _parse_json(_decode(raw, path, number), path, number)
                if not isinstance(row, dict):
                    raise DataError(str(path), f"expected a JSON object, got {_kind(row)}", line=number)
                yield number, row
    except _GZIP_ERRORS as exc:
        raise DataError(str(path), f"cannot read{' gzip data' if gz else ''} ({exc})", line=number + 1) from None


def _json_rows(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    data = _parse_json(text, path, None)
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(str(path), f'expected a JSON list of objects or {{"data": [...]}}, got {_kind(data)}')
    for number, row in enumerate(data, 1):
        if not isinstance(row, dict):
            raise DataError(str(path), f"item {number} is {_kind(row)}, expected an object", line=number)
        yield number, row


def _csv_rows(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))  # a single huge cell is data, not an attack on csv
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, [])
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise DataError(str(path), f"repeated column name(s) {repeated} in the header", line=1)
        start = reader.line_num + 1  # a quoted cell may span lines; a record is named by its first line
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not cells:
                continue
            if len(cells) != len(header):
                raise DataError(str(path), f"{len(cells)} values but the header has {len(header)} columns "
                                           f"({', '.join(header)})", line=line)
            yield line, dict(zip(header, cells, strict=False))
    except csv.Error as exc:
        raise DataError(str(path), f"malformed CSV ({exc})", line=reader.line_num or 1) from None
    finally:
        csv.field_size_limit(limit)


def _parquet_rows(path: Path, gz: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        source: Any = io.BytesIO(_read_bytes(path, True)) if gz else str(path)
        table = pq.read_table(source)
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(str(path), f"unreadable Parquet file ({type(exc).__name__}: {str(exc)[:200]})") from None
    yield from enumerate(table.to_pylist(), 1)


def _kind(value: Any) -> str:
    return {type(None): "null", dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(
        type(value), type(value).__name__)


def require_fields(row: dict[str, Any], fields: Iterable[str], path: str, line: int) -> None:
    """Raise a DataError naming the first missing field, the fields the row has and a near match."""
    for name in fields:
        if name not in row:
            raise DataError(path, f"missing{_row_hint(row, name)}", line=line, field=name)


def _row_hint(row: dict[str, Any], wanted: str) -> str:
    have = sorted(str(k) for k in row)
    close = difflib.get_close_matches(wanted, have, n=1)
    return f"; the row has: {', '.join(have) or 'nothing'}" + (f"; did you mean '{close[0]}'?" if close else "")


def _resolve(row: dict[str, Any], canonical: str, mapping: dict[str, str]) -> str | None:
    if canonical in mapping:
        return mapping[canonical] if mapping[canonical] in row else None
    return next((name for name in ALIASES[canonical] if name in row), None)


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in value)


def _text_field(value: Any, path: str, line: int, field: str) -> Any:
    if isinstance(value, str):
        if not value.strip():
            raise DataError(path, "empty", line=line, field=field)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # JSON "\ud800" escapes decode to unpaired surrogates
            raise DataError(path, "contains an unpaired UTF-16 surrogate (a broken \\u escape)",
                            line=line, field=field) from None
        return value
    if _is_messages(value):
        for message in value:
            if message["role"] != "system" or message["content"]:  # an empty system prompt is harmless
                _text_field(message["content"], path, line, field)
        return value
    found = _kind(value)
    if isinstance(value, list):
        bad = next(((i, m) for i, m in enumerate(value, 1) if not _is_messages([m])), None)
        if not value:
            found = "an empty list"
        elif bad is not None and isinstance(bad[1], dict):
            role, content = bad[1].get("role"), bad[1].get("content")
            found = (f"message {bad[0]} with role {role!r}" if role not in ROLES
                     else f"message {bad[0]} with content of type {_kind(content)}")
        elif bad is not None:
            found = f"a list whose item {bad[0]} is {_kind(bad[1])}"
    expected = f"a string or a chat message list ([{{\"role\": one of {'/'.join(ROLES)}, \"content\": str}}, ...])"
    raise DataError(path, f"expected {expected}, got {found}", line=line, field=field)


def _blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()


def _scalar(value: Any, path: str, line: int, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(path, f"expected a string or a number, got {_kind(value)}", line=line, field=field)
    if not str(value).strip():
        raise DataError(path, "empty", line=line, field=field)
    return str(value)


def pair_from_row(row: dict[str, Any], path: str, line: int, mapping: dict[str, str] | None = None, *,
                  allow_identical: bool = False, allow_empty: bool = False) -> PreferencePair:
    """One validated PreferencePair from a raw row (message-list responses are split).

    With a ``label`` column (or ``map=label=COLUMN``) the two response columns are the first and
    second response and the label says which is preferred: ``1`` keeps the columns as mapped, ``2``
    swaps them (LLMBar: ``output_1``, ``output_2``, ``label`` ∈ {1, 2}); any other value is an error.
    ``allow_empty`` lets an empty response through (an evaluation skips and counts it) instead of an error.
    """
    mapping = mapping or {}
    names = {key: _resolve(row, key, mapping) for key in ALIASES}
    consumed = {n for n in names.values() if n}
    chosen_value = row.get(names["chosen"]) if names["chosen"] else None
    if names["chosen"] == "output" and names["rejected"] is None and isinstance(chosen_value, list) \
            and len(chosen_value) == 2 and all(isinstance(v, str) for v in chosen_value):
        chosen_value, rejected_value = chosen_value  # {"instruction", "output": [chosen, rejected]}
    else:
        for key in ("chosen", "rejected"):
            if names[key] is None:
                wanted = mapping.get(key, key)
                aliases = "" if key in mapping else f" or an alias: {', '.join(ALIASES[key][1:])}"
                raise DataError(path, f"missing; expected '{wanted}'{aliases}{_row_hint(row, wanted)}",
                                line=line, field=wanted)
        rejected_value = row[names["rejected"]]  # type: ignore[index]
    chosen_field, rejected_field = names["chosen"] or "chosen", names["rejected"] or names["chosen"] or "rejected"
    chosen = "" if allow_empty and _blank(chosen_value) else _text_field(chosen_value, path, line, chosen_field)
    rejected = "" if allow_empty and _blank(rejected_value) else _text_field(rejected_value, path, line, rejected_field)
    if names["label"] is not None:
        label = _scalar(row[names["label"]], path, line, names["label"])
        if label not in LABEL_VALUES:
            raise DataError(path, f"expected {LABEL_VALUES[0]} ('{chosen_field}' preferred) or {LABEL_VALUES[1]} "
                                  f"('{rejected_field}' preferred), got {label!r}", line=line, field=names["label"])
        if label == LABEL_VALUES[1]:
            chosen, rejected = rejected, chosen
            chosen_field, rejected_field = rejected_field, chosen_field
    prompt = None
    if names["prompt"] is not None:
        prompt = _text_field(row[names["prompt"]], path, line, names["prompt"])
        extra = row.get("input")
        if names["prompt"] == "instruction" and isinstance(extra, str) and extra.strip():
            prompt, consumed = f"{prompt}\n\n{extra}", consumed | {"input"}  # Alpaca: instruction + input
    try:
        prompt_c, chosen_text = split_conversation(prompt, chosen)
        prompt_r, rejected_text = split_conversation(prompt, rejected)
    except ValueError as exc:
        raise DataError(path, str(exc), line=line, field=chosen_field) from None
    if isinstance(chosen, list) and isinstance(rejected, list) and prompt_c != prompt_r:
        raise DataError(path, "the chosen and rejected conversations differ before their last message; "
                              "both must continue the same prompt", line=line, field=rejected_field)
    for text, field in ((chosen_text, chosen_field), (rejected_text, rejected_field)):
        if not text.strip() and not allow_empty:
            raise DataError(path, "empty (the last assistant message has no text)", line=line, field=field)
    if not prompt_c:
        raise DataError(path, f"missing; no prompt field (e.g. {', '.join(ALIASES['prompt'])}) and the responses "
                              f"carry no conversation{_row_hint(row, 'prompt')}", line=line,
                        field=mapping.get("prompt", "prompt"))
    if not allow_identical and chosen_text.strip() == rejected_text.strip():
        raise DataError(path, "chosen and rejected are identical; a preference needs two different answers "
                              "(allow_identical=True keeps such rows)", line=line, field=rejected_field)
    record_id = _scalar(row[names["id"]], path, line, names["id"]) if names["id"] else None
    answer = _scalar(row[names["answer"]], path, line, names["answer"]) if names["answer"] else None
    metadata = {k: v for k, v in row.items() if k not in consumed}
    return PreferencePair(prompt_c, chosen_text, rejected_text, id=record_id or f"line-{line}", answer=answer,
                          metadata=metadata, line=line)


def _response_lists(row: dict[str, Any], line: int, mapping: dict[str, str]) -> list[dict[str, Any]]:
    """RM-Bench-style rows whose chosen and rejected are lists of plain-string responses (one per
    style) become one row per (chosen i, rejected j), id ``<id>:<i>-<j>`` (1-based), i and j kept
    as ``chosen_index``/``rejected_index``; any other row is returned as is."""
    names = {key: _resolve(row, key, mapping) for key in ("chosen", "rejected", "id")}
    if names["chosen"] is None or names["rejected"] is None:
        return [row]
    chosen, rejected = row[names["chosen"]], row[names["rejected"]]
    if not all(isinstance(v, list) and v and all(isinstance(x, str) for x in v) for v in (chosen, rejected)):
        return [row]
    base = str(row[names["id"]]) if names["id"] and row[names["id"]] not in (None, "") else f"line-{line}"
    id_field = names["id"] or "id"
    return [{**row, names["chosen"]: c, names["rejected"]: r, id_field: f"{base}:{i}-{j}",
             "chosen_index": i, "rejected_index": j}
            for i, c in enumerate(chosen, 1) for j, r in enumerate(rejected, 1)]


def _collect(rows: Iterable[tuple[int, dict[str, Any]]], name: str, mapping: dict[str, str] | None,
             allow_duplicate_ids: bool, allow_identical: bool, csv_cells: bool = False,
             allow_empty: bool = False, expand_lists: bool = False) -> list[PreferencePair]:
    pairs: list[PreferencePair] = []
    first_line: dict[str, int] = {}
    for line, raw in rows:
        if csv_cells:
            raw = {k: _chat_cell(v) for k, v in raw.items()}
        for row in _response_lists(raw, line, mapping or {}) if expand_lists else [raw]:
            pair = pair_from_row(row, name, line, mapping, allow_identical=allow_identical, allow_empty=allow_empty)
            if pair.id in first_line and not allow_duplicate_ids:
                raise DataError(name, f"duplicate id '{pair.id}' (first seen on line {first_line[pair.id]})",
                                line=line, field="id")
            first_line.setdefault(pair.id, line)
            pairs.append(pair)
    if not pairs:
        raise DataError(name, "no records")
    return pairs


def _chat_cell(value: str) -> Any:
    """A CSV cell holding a JSON chat message list becomes that list; any other cell stays text."""
    if value.startswith("[{"):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return value
        return decoded if _is_messages(decoded) else value
    return value


def read_pairs(path: str | Path, mapping: dict[str, str] | None = None, *, allow_duplicate_ids: bool = False,
               allow_identical: bool = False, allow_empty: bool = False, expand_lists: bool = False
               ) -> list[PreferencePair]:
    """All preference pairs of a file; duplicate ids are an error naming both lines. ``expand_lists``
    turns rows with lists of string responses (RM-Bench) into one pair per (chosen, rejected)."""
    is_csv = Path(path).name.lower().endswith((".csv", ".csv.gz"))
    return _collect(read_rows(path), str(path), mapping, allow_duplicate_ids, allow_identical, csv_cells=is_csv,
                    allow_empty=allow_empty, expand_lists=expand_lists)


def pairs_from_dataset(dataset: Any, mapping: dict[str, str] | None = None, name: str | None = None, *,
                       allow_duplicate_ids: bool = False, allow_identical: bool = False) -> list[PreferencePair]:
    """Pairs from a Hugging Face ``datasets.Dataset`` (rows are numbered from 1, like lines)."""
    label = name or f"<dataset {getattr(getattr(dataset, 'info', None), 'dataset_name', None) or 'in memory'}>"
    return _collect(((i, dict(row)) for i, row in enumerate(dataset, 1)), label, mapping, allow_duplicate_ids,
                    allow_identical)


def _builtin_params(source: str) -> tuple[str, dict[str, str]]:
    name, _, query = source[len(BUILTIN_PREFIX):].partition("?")
    if name != "arithmetic":
        raise DataError(source, f"unknown built-in dataset '{name}'; available: builtin:arithmetic")
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    unknown = sorted(set(params) - {"n", "seed", "split", "level"})
    if unknown:
        raise DataError(source, f"unknown parameter(s) {unknown}; use n, seed, split (train or heldout) and level "
                                "(1: one-step problems, 2: 2-4 steps)")
    return name, params


def load_pairs(source: Any, mapping: dict[str, str] | None = None, *, allow_identical: bool = False
               ) -> list[PreferencePair]:
    """Pairs from a file path, a ``datasets.Dataset`` or ``builtin:arithmetic[?n=64&seed=3&split=heldout&level=1]``."""
    if not isinstance(source, (str, Path)):
        return pairs_from_dataset(source, mapping, allow_identical=allow_identical)
    source = str(source)
    if not source.startswith(BUILTIN_PREFIX):
        return read_pairs(source, mapping, allow_identical=allow_identical)
    from gemkit.data.arithmetic import DEFAULT_LEVEL, LEVELS, builtin_heldout_pairs, builtin_train_pairs

    _, params = _builtin_params(source)
    numbers: dict[str, int] = {}
    for key in ("n", "seed", "level"):
        if key in params:
            try:
                numbers[key] = int(params[key])
            except ValueError:
                raise DataError(source, f"parameter {key} must be an integer, got {params[key]!r}") from None
    if numbers.get("n", 1) < 1:
        raise DataError(source, f"parameter n must be >= 1, got {numbers['n']}")
    level = numbers.get("level", DEFAULT_LEVEL)
    if level not in LEVELS:
        raise DataError(source, f"parameter level must be one of {sorted(LEVELS)} (1: one-step problems, "
                                f"2: 2-4 steps), got {level}")
    split = params.get("split", "train")
    if split == "train":
        return builtin_train_pairs(numbers.get("n", 256), numbers.get("seed", 0), level)
    if split in ("heldout", "test"):
        return builtin_heldout_pairs(numbers.get("n", 64), numbers.get("seed", 1), level)
    raise DataError(source, f"split must be train or heldout, got {split!r}")


def parse_mapping(text: str | None) -> dict[str, str]:
    """``"prompt=question,chosen=answer_pos"`` -> ``{"prompt": "question", "chosen": "answer_pos"}``."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or key not in ALIASES or not value:
            raise DataError("--map", f"expected FIELD=COLUMN with FIELD one of {', '.join(ALIASES)}, got {part!r}")
        if key in out:
            raise DataError("--map", f"field '{key}' is mapped twice ({out[key]!r} and {value!r})")
        out[key] = value
    return out


def read_prompts(source: Any, mapping: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """``(id, prompt text)`` of every record; rows need only a prompt (a test set of questions will do).

    Rows without a prompt field fall back to full pair parsing (the prompt of a conversation).
    """
    if not isinstance(source, (str, Path)) or str(source).startswith(BUILTIN_PREFIX):
        return [(p.id, p.prompt_text()) for p in load_pairs(source, mapping)]
    name, out, first_line = str(source), [], {}
    for line, row in read_rows(source):
        field = _resolve(row, "prompt", mapping or {})
        if field is None:
            pair = pair_from_row(row, name, line, mapping, allow_identical=True)
            record_id, text = pair.id, pair.prompt_text()
        else:
            prompt = _text_field(_chat_cell(row[field]) if isinstance(row[field], str) else row[field],
                                 name, line, field)
            id_field = _resolve(row, "id", mapping or {})
            record_id = (_scalar(row[id_field], name, line, id_field) if id_field else None) or f"line-{line}"
            text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
        if record_id in first_line:
            raise DataError(name, f"duplicate id '{record_id}' (first seen on line {first_line[record_id]})",
                            line=line, field="id")
        first_line[record_id] = line
        out.append((record_id, text))
    return out
