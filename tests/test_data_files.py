"""Readers, validation messages, the built-in set and overlap checks."""
import csv
import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gemkit.cli import main
from gemkit.data.arithmetic import builtin_heldout, builtin_train_pairs, extract_final_answer
from gemkit.data.overlap import prompt_overlap
from gemkit.data.readers import load_pairs, read_pairs
from gemkit.data.records import PreferencePair
from gemkit.errors import DataError

ROWS = [{"prompt": f"question {i}", "chosen": f"good {i}", "rejected": f"bad {i}", "id": f"r{i}"} for i in range(10)]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_line_7_without_rejected_exits_2_naming_line_and_field(tmp_path, capsys):
    rows = [dict(r) for r in ROWS]
    del rows[6]["rejected"]
    code = main(["data", "validate", str(_jsonl(tmp_path / "bad.jsonl", rows))])
    err = capsys.readouterr().err
    assert code == 2 and "line 7" in err and "'rejected'" in err and str(tmp_path / "bad.jsonl") in err


def test_validate_ok_prints_summary(tmp_path, capsys):
    assert main(["data", "validate", str(_jsonl(tmp_path / "ok.jsonl", ROWS)), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 10 and summary["tokens"]["chosen"]["max"] >= summary["tokens"]["chosen"]["min"]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet", "jsonl.gz"])
def test_every_format_reads_the_same_pairs(tmp_path, fmt):
    path = tmp_path / f"data.{fmt}"
    if fmt == "jsonl":
        _jsonl(path, ROWS)
    elif fmt == "json":
        path.write_text(json.dumps(ROWS))
    elif fmt == "csv":
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
            writer.writeheader()
            writer.writerows(ROWS)
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(ROWS), path)
    else:
        path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in ROWS).encode()))
    pairs = read_pairs(path)
    assert [(p.id, p.prompt, p.chosen, p.rejected) for p in pairs] == [
        (r["id"], r["prompt"], r["chosen"], r["rejected"]) for r in ROWS]


def test_field_mapping_and_chat_message_responses(tmp_path):
    rows = [{"question": "q", "answer_pos": "yes", "answer_neg": "no"},
            {"chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
             "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "go away"}]}]
    pairs = read_pairs(_jsonl(tmp_path / "m.jsonl", rows))
    assert (pairs[0].prompt, pairs[0].chosen, pairs[0].rejected) == ("q", "yes", "no")
    assert pairs[1].prompt == [{"role": "user", "content": "hi"}] and pairs[1].chosen == "hello"


@pytest.mark.parametrize("content, message", [
    (b'{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a", "chosen": ', "line 2: malformed JSON"),
    (b"", "empty"),
    (b'{"prompt": "a", "chosen": 3, "rejected": "c"}\n', "line 1: field 'chosen': expected a string"),
    (b'{"prompt": "a", "chosen": "", "rejected": "c"}\n', "field 'chosen': empty"),
    (b'{"prompt": "a", "chosen": "b", "rejected": "c"}\n\xff\xfe\n', "line 2: undecodable bytes"),
    (b'{"prompt": "a", "chosen": "same", "rejected": "same"}\n', "identical"),
    (b'{"id": 1, "prompt": "a", "chosen": "b", "rejected": "c"}\n{"id": 1, "prompt": "d", "chosen": "e", '
     b'"rejected": "f"}\n', "duplicate id '1' (first seen on line 1)"),
])
def test_bad_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_pairs(path)


def test_a_50_mb_single_line_fails_cleanly(tmp_path):
    path = tmp_path / "huge.jsonl"
    path.write_text('{"prompt": "' + "x" * 50_000_000 + '", "chosen": "a"}\n')
    with pytest.raises(DataError, match="line 1: field 'rejected'"):
        read_pairs(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.binary(max_size=40), st.dictionaries(
    st.sampled_from(["prompt", "chosen", "rejected", "id", "question"]),
    st.one_of(st.text(max_size=5), st.integers(), st.none(), st.lists(st.integers(), max_size=2))).map(
        lambda d: json.dumps(d).encode())), max_size=5))
def test_hostile_lines_give_pairs_or_a_data_error(tmp_path, lines):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(lines))
    try:
        pairs = read_pairs(path)
    except DataError as exc:
        assert str(path) in str(exc)
    else:
        assert all(isinstance(p, PreferencePair) and p.chosen != p.rejected for p in pairs)


def test_builtin_set_is_deterministic_correct_and_disjoint():
    a, b = builtin_train_pairs(32, seed=0), builtin_train_pairs(32, seed=0)
    assert [p.chosen for p in a] == [p.chosen for p in b]
    assert [p.prompt for p in builtin_train_pairs(32, seed=1)] != [p.prompt for p in a]
    for pair in a:
        assert extract_final_answer(pair.chosen) == pair.answer
        assert extract_final_answer(pair.rejected) != pair.answer
    train_prompts = {p.prompt for p in builtin_train_pairs(256)}
    assert not train_prompts & {item["question"] for item in builtin_heldout(64)}
    assert len(load_pairs("builtin:arithmetic?n=5&seed=2")) == 5
    assert extract_final_answer("so Final Answer: 1,234.") == "1234" and extract_final_answer("none") is None


def test_overlap_exact_and_normalised(tmp_path, capsys):
    train = [PreferencePair("What is 2+2?", "4", "5", id="t1"), PreferencePair("Name a colour", "red", "7", id="t2")]
    test = [PreferencePair("What is 2+2?", "4", "3", id="e1"), PreferencePair("name a  colour!", "blue", "8", id="e2"),
            PreferencePair("Unrelated", "a", "b", id="e3")]
    report = prompt_overlap(train, test)
    assert report.exact == [("t1", "e1")] and report.normalised == [("t2", "e2")]
    train_file = _jsonl(tmp_path / "train.jsonl", [{"id": "x", "prompt": "p", "chosen": "a", "rejected": "b"}])
    test_file = _jsonl(tmp_path / "test.jsonl", [{"id": "y", "prompt": "q", "chosen": "a", "rejected": "b"}])
    assert main(["data", "overlap", str(train_file), str(test_file)]) == 0
    assert main(["data", "overlap", str(train_file), str(train_file)]) == 1
