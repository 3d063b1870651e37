"""Hostile inputs: whatever the bytes, the reader returns valid pairs or raises DataError, nothing else.

Property tests feed random bytes, random JSON lines and random CSV text through every format; a
corpus of hand-made bad files (tests/assets/data/bad) and a few made at test time (a 50 MB line,
absurd nesting, huge integers, lone surrogates) check the message names the line and field.
"""
import gzip
import json
import resource
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gemkit.data.readers import read_pairs, read_prompts
from gemkit.data.records import PreferencePair
from gemkit.errors import DataError

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FIELDS = ["prompt", "chosen", "rejected", "id", "question", "answer_pos", "answer_neg", "instruction", "output",
          "answer", "input"]
message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "bot"]),
                                 "content": st.one_of(st.text(max_size=6), st.integers())})
value = st.one_of(st.text(max_size=8), st.integers(), st.floats(allow_nan=True), st.none(), st.booleans(),
                  st.lists(message, max_size=3), st.lists(st.text(max_size=3), max_size=3),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
row = st.dictionaries(st.sampled_from(FIELDS), value, max_size=6)


def _check(path):
    """Read ``path``: either every pair is valid or a DataError names the file. Any other exception fails."""
    try:
        pairs = read_pairs(path)
    except DataError as exc:
        assert str(path) in str(exc)
        return None
    for pair in pairs:
        assert isinstance(pair, PreferencePair) and isinstance(pair.chosen, str) and isinstance(pair.rejected, str)
        assert pair.chosen.strip() and pair.rejected.strip() and pair.chosen.strip() != pair.rejected.strip()
        assert pair.prompt and pair.id
    assert len({p.id for p in pairs}) == len(pairs)
    return pairs


@SETTINGS
@given(data=st.binary(max_size=300), suffix=st.sampled_from(["jsonl", "json", "csv", "parquet", "jsonl.gz", "csv.gz"]))
def test_random_bytes_in_any_format(tmp_path, data, suffix):
    path = tmp_path / f"fuzz.{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") and data[:1] != b"\x1f" else data)
    _check(path)


@SETTINGS
@given(lines=st.lists(st.one_of(row.map(json.dumps), st.binary(max_size=30).map(
    lambda b: b.decode("latin-1")), st.just(""), st.just("[1, 2]"), st.just("null")), max_size=6))
def test_random_json_lines(tmp_path, lines):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    pairs = _check(path)
    if pairs is not None:
        assert len(pairs) <= len(lines)


@SETTINGS
@given(rows=st.lists(row, max_size=5), wrapped=st.booleans())
def test_random_json_documents(tmp_path, rows, wrapped):
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps({"data": rows} if wrapped else rows))
    _check(path)


@SETTINGS
@given(tokens=st.lists(st.sampled_from(list('ab,"\n\r\x00 ') + ["prompt", "chosen", "rejected", "prompt,chosen,rejected\n"]),
                      max_size=30))
def test_random_csv_text(tmp_path, tokens):
    text = "".join(tokens)
    path = tmp_path / "fuzz.csv"
    path.write_text(text, newline="")
    _check(path)


@pytest.mark.parametrize("name, message", [
    ("missing_rejected_line7.jsonl", "line 7: field 'rejected': missing"),
    ("malformed.jsonl", "line 3: malformed JSON"),
    ("empty.jsonl", "the file is empty"),
    ("blank_lines.jsonl", "the file is empty (no records)"),
    ("wrong_type.jsonl", "line 2: field 'chosen': expected a string or a chat message list"),
    ("undecodable.jsonl", "line 3: undecodable bytes (not UTF-8)"),
    ("duplicate_ids.jsonl", "line 3: field 'id': duplicate id 'p1' (first seen on line 1)"),
    ("identical.jsonl", "line 2: field 'rejected': chosen and rejected are identical"),
    ("empty_field.jsonl", "line 1: field 'prompt': empty"),
    ("not_objects.json", "line 2: item 2 is a string, expected an object"),
    ("ragged.csv", "line 3: 5 values but the header has 4 columns"),
    ("bad_role.jsonl", "line 1: field 'prompt': .*got message 1 with role 'narrator'"),
    ("truncated.jsonl.gz", "cannot read gzip data"),
])
def test_corpus_of_bad_files(assets, name, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_pairs(assets / "data" / "bad" / name)


@pytest.mark.parametrize("content, message", [
    (b"[" * 100_000, "unreadable JSON value|malformed JSON"),  # absurd nesting: no RecursionError escapes
    (b'{"prompt": "p", "chosen": ' + b"1" * 5000 + b', "rejected": "r"}', "line 1: unreadable JSON value"),
    (b'{"prompt": "\\ud800", "chosen": "a", "rejected": "b"}', "line 1: field 'prompt': .*unpaired"),
    (b'{"prompt": "p", "chosen": [{"role": "assistant", "content": "   "}], "rejected": "b"}', "empty"),
    (b'{"prompt": "p", "chosen": [{"role": "user", "content": "x"}], "rejected": "b"}', "end with an assistant"),
    (b'{"prompt": "p", "chosen": "a", "rejected": "b", "id": true}', "field 'id': expected a string or a number"),
    (b'{"chosen": "a", "rejected": "b"}', "line 1: field 'prompt': missing"),
])
def test_hostile_json_values(tmp_path, content, message):
    path = tmp_path / ("deep.json" if content.startswith(b"[") else "x.jsonl")
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_pairs(path)


def test_paths_that_are_not_data_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_pairs(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="not a regular file"):
        read_pairs(tmp_path)
    (tmp_path / "data.txt").write_text("prompt,chosen,rejected\n")
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        read_pairs(tmp_path / "data.txt")
    (tmp_path / "bom.csv").write_bytes("\ufeffprompt,chosen,rejected\nq,a,b\n".encode())
    assert read_pairs(tmp_path / "bom.csv")[0].prompt == "q"  # Excel's UTF-8 BOM is not part of the header


def test_a_huge_csv_cell_is_read(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("prompt,chosen,rejected\n" + "x" * 300_000 + ",a,b\n")  # over csv's default 128 KiB cell limit
    assert len(read_pairs(path)[0].prompt) == 300_000


def test_a_50_mb_single_line_is_read_or_refused_quickly(tmp_path):
    """One 50 MB prompt: fine when the row is complete, a named error when a field is missing or the
    line is cut; neither hangs nor keeps more than a few copies of the line in memory."""
    huge = "x" * 50_000_000
    path = tmp_path / "huge.jsonl"
    start, peak_before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    path.write_text('{"prompt": "' + huge + '", "chosen": "a", "rejected": "b"}\n')
    assert len(read_pairs(path)[0].prompt) == 50_000_000
    assert read_prompts(path)[0][0] == "line-1"
    path.write_text('{"prompt": "' + huge + '", "chosen": "a"}\n')
    with pytest.raises(DataError, match="line 1: field 'rejected': missing") as missing:
        read_pairs(path)
    assert len(str(missing.value)) < 500  # the message never quotes the data
    path.write_text('{"prompt": "' + huge)
    with pytest.raises(DataError, match="line 1: malformed JSON"):
        read_pairs(path)
    del huge
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024  # ru_maxrss is KiB on Linux
    assert time.perf_counter() - start < 30 and grown_mb < 600


text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), min_size=1, max_size=12
               ).filter(str.strip)


@SETTINGS
@given(rows=st.lists(st.tuples(text, text, text), max_size=5).filter(lambda rs: all(c.strip() != r.strip()
                                                                                    for _, c, r in rs)),
       suffix=st.sampled_from(["jsonl", "json", "csv", "parquet", "jsonl.gz"]))
def test_any_valid_rows_round_trip_in_every_format(tmp_path, rows, suffix):
    """The other side of the property: well-formed rows (any Unicode text) come back unchanged."""
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{"id": f"r{i}", "prompt": p, "chosen": c, "rejected": r} for i, (p, c, r) in enumerate(rows)]
    path = tmp_path / f"valid.{suffix}"
    if suffix == "csv":
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["id", "prompt", "chosen", "rejected"])
            writer.writeheader()
            writer.writerows(records)
    elif suffix == "parquet":
        pq.write_table(pa.Table.from_pylist(records, schema=pa.schema(
            [(k, pa.string()) for k in ("id", "prompt", "chosen", "rejected")])), path)
    else:
        body = json.dumps(records) if suffix == "json" else "".join(json.dumps(r) + "\n" for r in records)
        path.write_bytes(gzip.compress(body.encode()) if suffix.endswith(".gz") else body.encode())
    if not records:
        with pytest.raises(DataError, match="empty"):
            read_pairs(path)
        return
    # (texts are at most 12 characters, too short to be a JSON message list that CSV cells may hold)
    expected = [(r["id"], r["prompt"], r["chosen"], r["rejected"]) for r in records]
    got = [(p.id, p.prompt, p.chosen, p.rejected) for p in read_pairs(path)]
    assert got == expected


COMMANDS = {
    "train": ["train", "--method", "sft", "--model", "random:tiny", "--device", "cpu", "--quiet", "--steps", "1",
              "--train"],
    "bench": ["bench", "--methods", "sft", "--model", "random:tiny", "--device", "cpu", "--no-base", "--steps", "1",
              "--train"],
    "eval": ["eval", "--benchmark", "pairs", "--model", "random:tiny", "--device", "cpu", "--data"],
}
BAD_FILES = [("malformed.jsonl", "line 3: malformed JSON"), ("empty.jsonl", "the file is empty"),
             ("undecodable.jsonl", "line 3: undecodable bytes"), ("duplicate_ids.jsonl", "line 3: field 'id'"),
             ("identical.jsonl", "identical")]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("name, message", BAD_FILES)
def test_bad_data_exits_2_with_one_line_and_writes_nothing(assets, tmp_path, capsys, command, name, message):
    """``gemkit train|bench|eval`` on a bad file: exit 2, one ``Error: FILE, line N: ...`` line on
    stderr, and the output directory is never created. Except an identical pair under ``eval``: an
    evaluation skips and counts it (issue #17) and scores the rest."""
    from gemkit.cli import main

    path = assets / "data" / "bad" / name
    out = tmp_path / "out"
    if (command, name) == ("eval", "identical.jsonl"):
        assert main([*COMMANDS[command], str(path), "--out", str(out)]) == 0
        assert json.loads((out / "metrics.json").read_text())["counts"]["excluded_identical"] == 1
        return
    assert main([*COMMANDS[command], str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"Error: {path}") and message in err and "\n" not in err
    assert not out.exists()


def test_over_long_record_exits_2_naming_file_line_and_field_and_writes_nothing(tmp_path, capsys):
    """Line 2's prompt is 300 words; with --max-length 64 and --truncation error training refuses it
    (field prompt). Without the flag the same run cuts the prompt and reports 1 of 2 truncated."""
    from gemkit.cli import main

    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "What is 1 plus 1?", "chosen": "2", "rejected": "3"}) + "\n"
                    + json.dumps({"prompt": "word " * 300, "chosen": "yes", "rejected": "no"}) + "\n")
    out = tmp_path / "out"
    argv = [*COMMANDS["train"], str(path), "--out", str(out), "--max-length", "64", "--lora-r", "0"]
    assert main([*argv, "--truncation", "error"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"Error: {path}, line 2: field 'prompt': max_length=64 is exceeded by record 'line-2'")
    assert "\n" not in err
    assert not out.exists()
    assert main(argv) == 0
    assert "truncated prompts: 1 of 2 records over max_length=64" in capsys.readouterr().out
