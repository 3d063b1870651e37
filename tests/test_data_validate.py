"""Validation summary: counts, duplicates and token-length statistics."""
import pytest

from gemkit.data.encoding import encode_prompt, encode_response
from gemkit.data.records import PreferencePair
from gemkit.data.validate import format_summary, length_stats, summarise
from gemkit.errors import DataError


def test_length_stats_by_hand():
    """Values 1..20: mean 10.5; nearest-rank p95 is the ceil(0.95·20) = 19th smallest = 19."""
    assert length_stats(list(range(20, 0, -1))) == {"min": 1, "mean": 10.5, "p95": 19, "max": 20}
    assert length_stats([7]) == {"min": 7, "mean": 7.0, "p95": 7, "max": 7}


def test_summary_counts_duplicates_and_over_length(tokenizer):
    pairs = [PreferencePair("Hi there", "Hello!", "Go away.", id="a"),
             PreferencePair("hi, there", "Hey.", "No.", id="b"),
             PreferencePair("Hi there", "Welcome.", "Leave.", id="c", answer="1")]
    summary = summarise(pairs, tokenizer, max_length=10**6, source="x.jsonl")
    assert (summary["rows"], summary["duplicate_prompts"], summary["duplicate_prompts_normalised"]) == (3, 1, 2)
    assert summary["with_gold_answer"] == 1 and summary["over_max_length"] == 0
    prompt_len = len(encode_prompt(tokenizer, "Hi there"))
    assert summary["tokens"]["prompt"]["max"] == max(len(encode_prompt(tokenizer, p.prompt)) for p in pairs)
    assert summary["tokens"]["chosen"]["min"] == min(len(encode_response(tokenizer, p.chosen)) for p in pairs)
    # the first pair needs prompt + its longer response tokens: exactly that fits, one fewer does not
    first = prompt_len + max(len(encode_response(tokenizer, "Hello!")), len(encode_response(tokenizer, "Go away.")))
    assert summarise(pairs[:1], tokenizer, max_length=first)["over_max_length"] == 0
    assert summarise(pairs[:1], tokenizer, max_length=first - 1)["over_max_length"] == 1
    assert "duplicate prompts: 1 exact, 2 after normalising" in format_summary(summary)


def test_summary_of_nothing_is_a_data_error(tokenizer):
    with pytest.raises(DataError, match="no records"):
        summarise([], tokenizer)


def test_summary_splits_over_length_pairs_into_truncated_and_unfittable(tokenizer):
    """max_length = b's need: a (short) fits; b fits exactly; c's prompt is longer, so its prompt
    is cut (its response alone is short); d's chosen response alone fills max_length, so it can
    never fit. Over: 2 = 1 truncated (c) + 1 unfittable (d)."""
    from gemkit.data.lengths import record_lengths

    a = PreferencePair("Hi", "Hello!", "Go.", id="a")
    b = PreferencePair("Say something polite to me.", "Hello!", "Go.", id="b")
    p, c, r = record_lengths(b, tokenizer)
    limit = p + max(c, r)
    long_prompt = PreferencePair("Say something polite to me. " * 5, "Hello!", "Go.", id="c")
    long_answer = PreferencePair("Hi", "Hello " * limit, "Go.", id="d")
    summary = summarise([a, b, long_prompt, long_answer], tokenizer, max_length=limit)
    assert (summary["over_max_length"], summary["truncated_prompts"], summary["unfittable"]) == (2, 1, 1)
    assert (summary["truncated_ids"], summary["unfittable_ids"]) == (["c"], ["d"])
    assert "1 train with the prompt cut from the left (c), 1 cannot be trained on" in format_summary(summary)
