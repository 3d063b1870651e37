"""Atomic writes, crash-tolerant JSONL logs and atomic directories (gemkit.io)."""
import json
import os
import stat

import pytest

from gemkit.errors import DataError
from gemkit.io import append_jsonl, atomic_dir, atomic_write_json, atomic_write_text, read_jsonl, write_jsonl


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "result.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2, "b": [1, 2]})
    assert json.loads(target.read_text()) == {"a": 2, "b": [1, 2]}
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]
    # an ordinary open() would give 0666 & ~umask; mkstemp alone would give 0600
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "notes.txt"
    atomic_write_text(target, "old")

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_read_jsonl_drops_a_torn_last_line_and_append_cuts_it(tmp_path):
    log = tmp_path / "log.jsonl"
    append_jsonl(log, {"step": 1})
    append_jsonl(log, {"step": 2, "text": "héllo"})
    with open(log, "ab") as fh:  # a crash in the middle of the third append
        fh.write(b'{"step": 3, "lo')
    assert [r["step"] for r in read_jsonl(log)] == [1, 2]
    append_jsonl(log, {"step": 3})
    assert [r["step"] for r in read_jsonl(log)] == [1, 2, 3]
    assert log.read_bytes().count(b"\n") == 3


def test_read_jsonl_torn_multibyte_character_is_dropped(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"a": 1}\n{"t": "\xc3')
    assert list(read_jsonl(log)) == [{"a": 1}]


def test_read_jsonl_bad_middle_line_names_the_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"a": 1}\nnot json\n{"a": 3}\n')
    with pytest.raises(DataError, match="line 2"):
        list(read_jsonl(log))
    assert list(read_jsonl(tmp_path / "missing.jsonl")) == []


def test_write_jsonl_round_trips(tmp_path):
    rows = [{"i": i, "s": "x" * i} for i in range(5)]
    assert list(read_jsonl(write_jsonl(tmp_path / "rows.jsonl", rows))) == rows


def test_atomic_dir_replaces_target_only_on_success(tmp_path):
    target = tmp_path / "report"
    with atomic_dir(target) as work:
        (work / "a.txt").write_text("first")
    assert (target / "a.txt").read_text() == "first"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as work:
            (work / "a.txt").write_text("half")
            raise RuntimeError("crash")
    assert (target / "a.txt").read_text() == "first"
    with atomic_dir(target) as work:
        (work / "b.txt").write_text("second")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
