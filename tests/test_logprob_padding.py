"""The log-prob of a response is the same alone as inside a padded batch, with left or right padding.

This is what makes chosen + rejected in ONE forward (and the reference cache's keys) sound:
``response_logprobs`` derives position ids from the attention mask, so padding never shifts them,
and only response positions are summed.
"""
import pytest
import torch

from gemkit.data.encoding import collate, encode_sequence
from gemkit.logprobs import response_logprobs
from gemkit.train.reference_cache import sequence_keys

PROMPTS = ["What is 2 + 2?", "Name a colour that is often used for the sky on a clear summer afternoon.", "Hi"]
RESPONSES = ["4", "Blue, most of the time, though it turns orange and red near sunset.", "Hello!"]


@pytest.mark.parametrize("side", ["left", "right"])
def test_response_logprob_alone_equals_in_padded_batch(tiny_bundle, side):
    """Three sequences of different lengths: each row's Σ log π and token mean in the padded batch equal
    the values from a batch holding that sequence alone (no padding at all), to 1e-5."""
    model, tokenizer = tiny_bundle.model.eval(), tiny_bundle.tokenizer
    sequences = [encode_sequence(tokenizer, p, r) for p, r in zip(PROMPTS, RESPONSES)]
    assert len({len(s.input_ids) for s in sequences}) == 3  # really padded
    with torch.no_grad():
        together = response_logprobs(model, collate(sequences, tokenizer.pad_token_id, side=side))
        for row, seq in enumerate(sequences):
            alone = response_logprobs(model, collate([seq], tokenizer.pad_token_id))
            assert int(alone.lengths[0]) == seq.response_length == int(together.lengths[row])
            assert float(together.sum()[row]) == pytest.approx(float(alone.sum()[0]), abs=1e-5)
            assert float(together.mean()[row]) == pytest.approx(float(alone.mean()[0]), abs=1e-6)


def test_left_and_right_padding_agree_token_by_token(tiny_bundle):
    """Per-token log-probs of every response token (in order) are the same under both paddings."""
    model, tokenizer = tiny_bundle.model.eval(), tiny_bundle.tokenizer
    sequences = [encode_sequence(tokenizer, p, r) for p, r in zip(PROMPTS, RESPONSES)]
    with torch.no_grad():
        left = response_logprobs(model, collate(sequences, tokenizer.pad_token_id, side="left"))
        right = response_logprobs(model, collate(sequences, tokenizer.pad_token_id, side="right"))
    for row in range(len(sequences)):
        a = left.token_logps[row][left.mask[row].bool()]
        b = right.token_logps[row][right.mask[row].bool()]
        assert torch.allclose(a, b, atol=1e-5)


def test_reference_cache_keys_ignore_padding(tokenizer):
    """The cache key of a sequence is the same padded left, padded right or alone, and differs when the
    response start moves (same tokens, different prompt/response split)."""
    sequences = [encode_sequence(tokenizer, p, r) for p, r in zip(PROMPTS, RESPONSES)]
    left = sequence_keys(collate(sequences, tokenizer.pad_token_id, side="left"))
    right = sequence_keys(collate(sequences, tokenizer.pad_token_id, side="right"))
    alone = [sequence_keys(collate([s], tokenizer.pad_token_id))[0] for s in sequences]
    assert left == right == alone and len(set(alone)) == 3
    shifted = sequences[0].__class__(sequences[0].input_ids, sequences[0].response_start + 1)
    assert sequence_keys(collate([shifted], tokenizer.pad_token_id))[0] != alone[0]
