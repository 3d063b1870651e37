"""``gemkit data validate`` and ``gemkit data overlap``: exit codes and messages."""
import json

import pytest

from gemkit.cli import build_parser, main


def test_line_7_missing_rejected_exits_2_naming_file_line_and_field(assets, capsys):
    path = assets / "data" / "bad" / "missing_rejected_line7.jsonl"
    assert main(["data", "validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"Error: {path}, line 7: field 'rejected': missing") and captured.out == ""


@pytest.mark.parametrize("name, message", [
    ("malformed.jsonl", "line 3: malformed JSON"), ("empty.jsonl", "the file is empty"),
    ("undecodable.jsonl", "line 3: undecodable bytes"), ("duplicate_ids.jsonl", "line 3: field 'id': duplicate id"),
    ("ragged.csv", "line 3: 5 values but the header has 4 columns"),
])
def test_bad_files_exit_2(assets, capsys, name, message):
    assert main(["data", "validate", str(assets / "data" / "bad" / name)]) == 2
    assert message in capsys.readouterr().err


def test_validate_prints_a_summary_and_writes_nothing(assets, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["data", "validate", str(assets / "data" / "pairs.csv"), "--json", "--max-length", "4"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 4 and summary["duplicate_prompts"] == 0 and summary["over_max_length"] == 4
    assert set(summary["tokens"]) == {"prompt", "chosen", "rejected"}
    assert main(["data", "validate", str(assets / "data" / "custom_columns.jsonl"),
                 "--map", "prompt=q,chosen=good,rejected=bad,id=key"]) == 0
    out = capsys.readouterr().out
    assert "OK, 4 pairs" in out and "p95" in out
    assert main(["data", "validate", "builtin:arithmetic?n=8"]) == 0
    assert list(tmp_path.iterdir()) == []


def test_allow_identical_flag(assets, capsys):
    path = str(assets / "data" / "bad" / "identical.jsonl")
    assert main(["data", "validate", path]) == 2
    assert main(["data", "validate", path, "--allow-identical"]) == 0


def test_overlap_exit_codes_and_json(assets, capsys):
    train, test = str(assets / "data" / "pairs.jsonl"), str(assets / "data" / "test_questions.jsonl")
    assert main(["data", "overlap", train, test, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["exact"]["train_ids"] == ["p2"] and report["exact"]["test_ids"] == ["t1"]
    assert report["normalised"]["train_ids"] == ["p3"] and report["normalised"]["test_ids"] == ["t2"]
    assert main(["data", "overlap", train, test]) == 1
    assert "1 exact overlap, 1 only after normalising" in capsys.readouterr().out
    assert main(["data", "overlap", "builtin:arithmetic?n=64", "builtin:arithmetic?split=heldout&n=64"]) == 0
    assert main(["data", "overlap", train, str(assets / "data" / "bad" / "empty.jsonl")]) == 2


def test_overlap_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["data", "overlap", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "0 no overlap, 1 overlap found, 2 unreadable input" in help_text
