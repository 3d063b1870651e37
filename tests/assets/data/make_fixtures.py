"""Writes the data fixtures in this folder (run from the repo root: python tests/assets/data/make_fixtures.py).

Every record is written by hand for gemkit's tests. The good files hold the same four pairs in each
format; ``bad/`` holds one broken file per failure the reader must name (see tests/test_hostile_inputs.py).
"""
import csv
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).parent
PAIRS = [
    {"id": "p1", "prompt": "Name a primary colour.", "chosen": "Red is a primary colour.", "rejected": "Green, always."},
    {"id": "p2", "prompt": "What is 3 + 4?", "chosen": "3 + 4 = 7.\nFinal Answer: 7", "rejected": "Final Answer: 8"},
    {"id": "p3", "prompt": "Give a synonym of quick.", "chosen": "Fast.", "rejected": "Slow."},
    {"id": "p4", "prompt": "Is ice colder than steam?", "chosen": "Yes, ice is colder.", "rejected": "No."},
]


def jsonl(rows):
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main():
    (HERE / "pairs.jsonl").write_text(jsonl(PAIRS))
    (HERE / "pairs.json").write_text(json.dumps({"data": PAIRS}, indent=1) + "\n")
    (HERE / "pairs.jsonl.gz").write_bytes(gzip.compress(jsonl(PAIRS).encode(), mtime=0))
    with open(HERE / "pairs.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(PAIRS[0]))
        writer.writeheader()
        writer.writerows(PAIRS)
    pq.write_table(pa.Table.from_pylist(PAIRS), HERE / "pairs.parquet")
    (HERE / "mapped.jsonl").write_text(jsonl(
        {"uid": r["id"], "question": r["prompt"], "answer_pos": r["chosen"], "answer_neg": r["rejected"]} for r in PAIRS))
    (HERE / "custom_columns.jsonl").write_text(jsonl(
        {"key": r["id"], "q": r["prompt"], "good": r["chosen"], "bad": r["rejected"]} for r in PAIRS))
    (HERE / "alpaca.json").write_text(json.dumps([
        {"instruction": "Translate to French.", "input": "cat", "output": ["chat", "chien"]},
        {"instruction": "Spell 'two' as a digit.", "output": ["2", "22"]},
    ], indent=1) + "\n")
    user = {"role": "user", "content": "Say hello politely."}
    (HERE / "chat.jsonl").write_text(jsonl([
        {"id": "c1", "chosen": [user, {"role": "assistant", "content": "Hello, nice to meet you."}],
         "rejected": [user, {"role": "assistant", "content": "What do you want?"}]},
        {"id": "c2", "prompt": [{"role": "system", "content": "Be brief."}, user],
         "chosen": "Hello!", "rejected": "Go away."},
    ]))
    # a test set holding only questions: p2's prompt exactly, p3's with other case and punctuation
    (HERE / "test_questions.jsonl").write_text(jsonl([
        {"id": "t1", "question": "What is 3 + 4?"},
        {"id": "t2", "question": "give a synonym of   QUICK"},
        {"id": "t3", "question": "What is 5 + 6?"},
    ]))

    bad = HERE / "bad"
    missing = [dict(r, id=f"m{i}") for i, r in enumerate(PAIRS + PAIRS, 1)]
    del missing[6]["rejected"]
    (bad / "missing_rejected_line7.jsonl").write_text(jsonl(missing))
    (bad / "malformed.jsonl").write_text(jsonl(PAIRS[:2]) + '{"prompt": "a", "chosen": "b", "rejected": \n')
    (bad / "empty.jsonl").write_text("")
    (bad / "blank_lines.jsonl").write_text("\n  \n\n")
    (bad / "wrong_type.jsonl").write_text(jsonl([PAIRS[0], dict(PAIRS[1], chosen=42)]))
    (bad / "undecodable.jsonl").write_bytes(jsonl(PAIRS[:2]).encode() + b'{"prompt": "caf\xe9", "chosen": "a", '
                                            b'"rejected": "b"}\n')
    (bad / "duplicate_ids.jsonl").write_text(jsonl([PAIRS[0], PAIRS[1], dict(PAIRS[2], id="p1")]))
    (bad / "identical.jsonl").write_text(jsonl([PAIRS[0], dict(PAIRS[1], rejected=PAIRS[1]["chosen"])]))
    (bad / "empty_field.jsonl").write_text(jsonl([dict(PAIRS[0], prompt="   ")]))
    (bad / "not_objects.json").write_text(json.dumps([PAIRS[0], "just a string"]) + "\n")
    (bad / "ragged.csv").write_text("id,prompt,chosen,rejected\np1,Hi,Hello,Bye\np2,Hi,Hello,Bye,extra\n")
    (bad / "bad_role.jsonl").write_text(jsonl([{"prompt": [{"role": "narrator", "content": "x"}],
                                                "chosen": "a", "rejected": "b"}]))
    (bad / "truncated.jsonl.gz").write_bytes(gzip.compress(jsonl(PAIRS).encode(), mtime=0)[:-12])


if __name__ == "__main__":
    main()
