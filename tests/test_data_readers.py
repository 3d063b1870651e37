"""Preference readers: every format, gzip, field mapping and aliases, chat messages, HF datasets."""
import csv
import json

import pytest

from gemkit.data.readers import (
    load_pairs,
    pairs_from_dataset,
    parse_mapping,
    read_pairs,
    read_prompts,
    read_rows,
    require_fields,
)
from gemkit.errors import DataError

EXPECTED = [("p1", "Name a primary colour.", "Red is a primary colour.", "Green, always."),
            ("p2", "What is 3 + 4?", "3 + 4 = 7.\nFinal Answer: 7", "Final Answer: 8"),
            ("p3", "Give a synonym of quick.", "Fast.", "Slow."),
            ("p4", "Is ice colder than steam?", "Yes, ice is colder.", "No.")]


def _tuples(pairs):
    return [(p.id, p.prompt, p.chosen, p.rejected) for p in pairs]


@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.json", "pairs.csv", "pairs.parquet", "pairs.jsonl.gz"])
def test_every_format_reads_the_same_pairs(assets, name):
    assert _tuples(read_pairs(assets / "data" / name)) == EXPECTED


@pytest.mark.parametrize("suffix", ["json.gz", "csv.gz", "parquet.gz"])
def test_gzipped_formats(assets, tmp_path, suffix):
    import gzip

    plain = assets / "data" / f"pairs.{suffix[:-3]}"
    packed = tmp_path / f"pairs.{suffix}"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert _tuples(read_pairs(packed)) == EXPECTED


def test_aliases_question_answer_pos_answer_neg(assets):
    assert _tuples(read_pairs(assets / "data" / "mapped.jsonl")) == EXPECTED


def test_explicit_mapping_and_its_errors(assets):
    path = assets / "data" / "custom_columns.jsonl"
    mapping = parse_mapping("prompt=q, chosen=good,rejected=bad,id=key")
    assert _tuples(read_pairs(path, mapping)) == EXPECTED
    with pytest.raises(DataError, match="line 1: field 'wrong': missing.*the row has: bad, good, key, q"):
        read_pairs(path, parse_mapping("prompt=q,chosen=good,rejected=wrong"))
    with pytest.raises(DataError, match="FIELD=COLUMN"):
        parse_mapping("answer_pos")
    with pytest.raises(DataError, match="mapped twice"):
        parse_mapping("chosen=a,chosen=b")


def test_missing_field_suggests_a_near_name(tmp_path):
    path = tmp_path / "typo.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejcted": "b"}) + "\n")
    with pytest.raises(DataError, match="did you mean 'rejcted'"):
        read_pairs(path)


def test_alpaca_instruction_input_and_output_pair(assets):
    pairs = read_pairs(assets / "data" / "alpaca.json")
    assert (pairs[0].prompt, pairs[0].chosen, pairs[0].rejected) == ("Translate to French.\n\ncat", "chat", "chien")
    assert pairs[1].id == "line-2" and "input" not in pairs[0].metadata


def test_chat_message_lists(assets):
    conversation, explicit = read_pairs(assets / "data" / "chat.jsonl")
    assert conversation.prompt == [{"role": "user", "content": "Say hello politely."}]
    assert (conversation.chosen, conversation.rejected) == ("Hello, nice to meet you.", "What do you want?")
    assert explicit.prompt[0] == {"role": "system", "content": "Be brief."} and explicit.chosen == "Hello!"


def test_conversations_must_share_their_prompt(tmp_path):
    row = {"chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
           "rejected": [{"role": "user", "content": "bye"}, {"role": "assistant", "content": "ciao"}]}
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match="line 1: field 'rejected': .*differ before their last message"):
        read_pairs(path)


def test_csv_cells_may_hold_chat_message_json(tmp_path):
    path = tmp_path / "chat.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["prompt", "chosen", "rejected"])
        writer.writerow([json.dumps([{"role": "user", "content": "hi"}]), "[not json", "b"])
    (pair,) = read_pairs(path)
    assert pair.prompt == [{"role": "user", "content": "hi"}] and pair.chosen == "[not json"


def test_csv_line_numbers_count_multiline_cells(tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text('prompt,chosen,rejected\n"two\nlines",a,b\nq,a,\n')
    with pytest.raises(DataError, match="line 4: field 'rejected': empty"):
        read_pairs(path)


def test_hf_dataset_object():
    import datasets

    ds = datasets.Dataset.from_list([{"question": "q1", "answer_pos": "a", "answer_neg": "b"},
                                     {"question": "q2", "answer_pos": "c", "answer_neg": "d"}])
    pairs = pairs_from_dataset(ds)
    assert [(p.id, p.prompt, p.chosen) for p in pairs] == [("line-1", "q1", "a"), ("line-2", "q2", "c")]
    assert [p.prompt for p in load_pairs(ds)] == ["q1", "q2"]
    with pytest.raises(DataError, match=r"<dataset .*>, line 2: field 'answer_neg': empty"):
        pairs_from_dataset(datasets.Dataset.from_list([{"question": "q", "answer_pos": "a", "answer_neg": "b"},
                                                       {"question": "q", "answer_pos": "a", "answer_neg": ""}]))


def test_identical_responses_can_be_allowed(assets):
    path = assets / "data" / "bad" / "identical.jsonl"
    with pytest.raises(DataError, match="line 2: field 'rejected': chosen and rejected are identical"):
        read_pairs(path)
    assert len(read_pairs(path, allow_identical=True)) == 2


def test_ids_answers_and_metadata(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"id": 7, "prompt": "p", "chosen": "a", "rejected": "b", "answer": 12.0,
                                "source": "hand"}) + "\n")
    (pair,) = read_pairs(path)
    assert (pair.id, pair.answer, pair.metadata) == ("7", "12", {"source": "hand"})
    path.write_text(json.dumps({"id": {"nested": 1}, "prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    with pytest.raises(DataError, match="field 'id': expected a string or a number, got an object"):
        read_pairs(path)


def test_read_rows_and_require_fields_for_upstream_schemas(assets):
    rows = list(read_rows(assets / "data" / "pairs.csv"))
    assert [line for line, _ in rows] == [2, 3, 5, 6]  # p2's chosen spans lines 3-4 and rows[0][1]["id"] == "p1"
    require_fields(rows[0][1], ["prompt", "chosen"], "pairs.csv", 2)
    with pytest.raises(DataError, match="pairs.csv, line 2: field 'promt': missing; .*did you mean 'prompt'"):
        require_fields(rows[0][1], ["prompt", "promt"], "pairs.csv", 2)


def test_builtin_sources_and_their_parameters():
    assert len(load_pairs("builtin:arithmetic?n=5&seed=2")) == 5
    assert load_pairs("builtin:arithmetic?n=3&split=heldout")[0].id == "arith-heldout-0000"
    for bad, message in [("builtin:maths", "unknown built-in dataset 'maths'"), ("builtin:arithmetic?n=x",
                         "n must be an integer, got 'x'"), ("builtin:arithmetic?n=0", "n must be >= 1"),
                         ("builtin:arithmetic?size=3", r"unknown parameter\(s\) \['size'\]"),
                         ("builtin:arithmetic?split=dev", "split must be train or heldout")]:
        with pytest.raises(DataError, match=message):
            load_pairs(bad)


def test_read_prompts_needs_only_a_prompt(assets):
    assert read_prompts(assets / "data" / "test_questions.jsonl")[:2] == [
        ("t1", "What is 3 + 4?"), ("t2", "give a synonym of   QUICK")]
    assert read_prompts(assets / "data" / "chat.jsonl")[0] == ("c1", "Say hello politely.")
