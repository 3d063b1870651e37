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
    sequences = [encode_sequence(tokenizer, p, r) for p, r in zip(PROMPTS, RESPONSES, strict=False)]
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
    sequences = [encode_sequence(tokenizer, p, r) for p, r in zip(PROMPTS, RESPONSES, strict=False)]
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
    sequences = [encode_sequence(tokenizer, p, r) for p, r in zip(PROMPTS, RESPONSES, strict=False)]
    left = sequence_keys(collate(sequences, tokenizer.pad_token_id, side="left"))
    right = sequence_keys(collate(sequences, tokenizer.pad_token_id, side="right"))
    alone = [sequence_keys(collate([s], tokenizer.pad_token_id))[0] for s in sequences]
    assert left == right == alone and len(set(alone)) == 3
    shifted = sequences[0].__class__(sequences[0].input_ids, sequences[0].response_start + 1)
    assert sequence_keys(collate([shifted], tokenizer.pad_token_id))[0] != alone[0]


def _group_sequences(tokenizer):
    """Two prompts of unequal length, three candidates each of unequal length (one of a single token)."""
    from gemkit.data.encoding import EncodedSequence, encode_prompt

    prompts = [encode_prompt(tokenizer, "What is 2 + 2?"), encode_prompt(tokenizer, PROMPTS[1])]
    candidates = [["4", "It is four.", "2 + 2 = 4, since two and two make four."], RESPONSES]
    sequences = []
    for prompt, group in zip(prompts, candidates, strict=True):
        for text in group:
            sequences.append(EncodedSequence(prompt + tokenizer(text, add_special_tokens=False)["input_ids"],
                                             len(prompt)))
    sequences[0] = EncodedSequence(sequences[0].input_ids[:sequences[0].response_start + 1], sequences[0].response_start)
    return sequences


@pytest.mark.parametrize("group_size", [3, [3, 1, 2]], ids=["k=3", "sizes-3-1-2"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_shared_prompt_forward_equals_the_plain_padded_forward(tiny_bundle, side, group_size):
    """Running each prompt once and its k=3 candidates on its repeated KV cache gives the plain padded
    forward's tensors position by position — log-probs, entropies, mask, labels and logits — and
    the same parameter gradients of L = Σ_{i,t} w_{i,t} log π(a_{i,t}) (fixed random w), to 1e-5.
    Groups of unequal sizes (the second prompt's three candidates as groups of 1 and 2) too."""
    from gemkit.logprobs import shared_prompt_logprobs, shares_prompts

    model, tokenizer = tiny_bundle.model.eval(), tiny_bundle.tokenizer
    sequences = _group_sequences(tokenizer)
    assert shares_prompts(sequences, 3) and len({s.response_start for s in sequences}) == 2
    assert len({len(s.input_ids) for s in sequences}) == 6  # every row padded differently
    batch = collate(sequences, tokenizer.pad_token_id, side=side)
    params = [p for p in model.parameters() if p.requires_grad]

    def run(fn):
        model.zero_grad(set_to_none=True)
        scores = fn()
        weights = torch.Generator().manual_seed(0)
        w = torch.rand(scores.token_logps.shape, generator=weights)
        (scores.token_logps * w).sum().backward()
        return scores, [p.grad.clone() for p in params]

    plain, plain_grads = run(lambda: response_logprobs(model, batch, with_entropy=True, keep_logits=True))
    shared, shared_grads = run(lambda: shared_prompt_logprobs(model, batch, sequences, group_size, with_entropy=True,
                                                              keep_logits=True))
    assert torch.equal(shared.mask, plain.mask) and torch.equal(shared.labels, plain.labels)
    assert torch.allclose(shared.token_logps, plain.token_logps, atol=1e-5)
    assert torch.allclose(shared.token_entropies, plain.token_entropies, atol=1e-5)
    on = plain.mask.bool()
    assert torch.allclose(shared.logits[on], plain.logits[on], atol=1e-5)
    assert float(plain.token_logps.detach().abs().sum()) > 1.0  # real values, not zeros on both sides
    for a, b in zip(shared_grads, plain_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert any(float(g.abs().sum()) > 0 for g in plain_grads)


def test_shares_prompts_needs_equal_prompts_within_each_group(tokenizer):
    """Groups of 3 sharing a prompt pass; cutting one candidate's prompt from the left (what max_length
    truncation does per sequence) or a group size that does not divide the rows fails."""
    from gemkit.data.encoding import EncodedSequence
    from gemkit.logprobs import shares_prompts

    sequences = _group_sequences(tokenizer)
    assert shares_prompts(sequences, 3)
    cut = sequences[4]
    sequences[4] = EncodedSequence(cut.input_ids[1:], cut.response_start - 1)
    assert not shares_prompts(sequences, 3)
    assert not shares_prompts(_group_sequences(tokenizer), 4) and not shares_prompts(_group_sequences(tokenizer), 1)
