"""The chat template is applied once; responses are masked exactly; padding changes nothing."""
import pytest
import torch

from gemkit.data.encoding import collate, encode_sequence, render_prompt
from gemkit.errors import ConfigError
from gemkit.logprobs import response_logprobs


def test_prompt_rendered_with_chat_template_and_response_not_duplicated(tokenizer):
    seq = encode_sequence(tokenizer, "What is 2+2?", "4")
    prompt_text = tokenizer.decode(seq.input_ids[:seq.response_start])
    response_text = tokenizer.decode(seq.input_ids[seq.response_start:])
    assert prompt_text == render_prompt(tokenizer, "What is 2+2?")
    assert prompt_text.rstrip().endswith("assistant")
    assert response_text == "4" + tokenizer.eos_token
    assert "What is 2+2?" not in response_text


def test_truncation_cuts_prompt_from_the_left_and_never_the_response(tokenizer):
    long_prompt = "word " * 200
    seq = encode_sequence(tokenizer, long_prompt, "short answer", max_length=64)
    assert len(seq.input_ids) == 64 and seq.truncated
    assert tokenizer.decode(seq.input_ids[seq.response_start:]) == "short answer" + tokenizer.eos_token
    with pytest.raises(ConfigError, match="exceeds max_length=64"):
        encode_sequence(tokenizer, long_prompt, "x", max_length=64, truncation="error")


def test_collate_masks_only_response_tokens(tokenizer):
    a = encode_sequence(tokenizer, "hi", "a")
    b = encode_sequence(tokenizer, "a longer prompt here", "a longer answer")
    for side in ("left", "right"):
        batch = collate([a, b], tokenizer.pad_token_id, side=side)
        assert batch.response_mask.sum(-1).tolist() == [a.response_length, b.response_length]
        assert (batch.response_mask <= batch.attention_mask).all()


@pytest.mark.parametrize("side", ["left", "right"])
def test_logprobs_and_entropies_padding_invariant(tiny_bundle, side):
    """A response scored alone or next to a longer one gives the same values (1e-5)."""
    tok, model = tiny_bundle.tokenizer, tiny_bundle.model
    short = encode_sequence(tok, "2+2?", "It is 4. Final Answer: 4")
    long = encode_sequence(tok, "A long question " * 10, "A long reasoning chain " * 6 + "Final Answer: 9")
    alone = response_logprobs(model, collate([short], tok.pad_token_id), with_entropy=True)
    mixed = response_logprobs(model, collate([short, long], tok.pad_token_id, side=side), with_entropy=True)
    assert torch.allclose(alone.sum()[0], mixed.sum()[0], atol=1e-5)
    e_alone = alone.token_entropies[0][alone.mask[0].bool()]
    e_mixed = mixed.token_entropies[0][mixed.mask[0].bool()]
    assert torch.allclose(e_alone, e_mixed, atol=1e-5)
