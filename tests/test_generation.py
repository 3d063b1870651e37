"""The shared sampler: EOS trimming, raw logits, greedy checks, and LoRA merged only while decoding."""
import pytest
import torch

from gemkit.data.encoding import collate
from gemkit.errors import ConfigError
from gemkit.generation import SamplingConfig, generate, merged_lora
from gemkit.logprobs import response_logprobs
from gemkit.models import LoraSpec, ModelSpec, load_model
from gemkit.ops import token_entropies


@pytest.fixture
def lora_bundle():
    bundle = load_model(ModelSpec(name="random:tiny", seed=1), lora=LoraSpec(r=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # make the adapter non-trivial (B starts at zero)
        for name, param in bundle.model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    return bundle


def test_merged_decoding_matches_unmerged_model_and_restores_base_exactly(lora_bundle):
    model = lora_bundle.model.eval()  # no LoRA dropout, so both paths are deterministic
    base_before = {n: p.detach().clone() for n, p in model.named_parameters() if "base_layer" in n}
    ids = torch.tensor([[5, 17, 300, 42]])
    with torch.no_grad():
        unmerged = model(input_ids=ids).logits
        with merged_lora(model):
            merged = model(input_ids=ids).logits
        after = model(input_ids=ids).logits
    assert torch.allclose(unmerged, merged, atol=1e-4)
    assert torch.equal(unmerged, after)
    for name, param in model.named_parameters():
        if name in base_before:
            assert torch.equal(param, base_before[name])


def test_generate_returns_trimmed_responses_and_raw_logits(lora_bundle):
    model, tok = lora_bundle.model, lora_bundle.tokenizer
    torch.manual_seed(0)
    out = generate(model, tok, ["Add 2 and 3."], sampling=SamplingConfig(max_new_tokens=6), num_return_sequences=3,
                   output_logits=True)
    assert len(out.texts) == 3 and out.prompt_index == [0, 0, 0]
    assert all(tok.eos_token_id not in ids for ids in out.response_ids)
    assert all(len(ids) == 6 for ids, done in zip(out.response_ids, out.finished, strict=False) if not done)
    # Entropies from generate's raw logits equal those of the training forward pass.
    batch = collate(out.sequences(with_eos=False, eos_id=tok.eos_token_id), tok.pad_token_id)
    model.eval()
    scores = response_logprobs(model, batch, with_entropy=True)
    for row, ids in enumerate(out.response_ids):
        expected = scores.token_entropies[row][scores.mask[row].bool()]
        assert torch.allclose(token_entropies(out.logits[row, :len(ids)]), expected, atol=1e-3)


def test_greedy_with_several_answers_is_a_clear_error(lora_bundle):
    with pytest.raises(ConfigError, match="greedy decoding gives one answer"):
        generate(lora_bundle.model, lora_bundle.tokenizer, ["hi"], sampling=SamplingConfig(do_sample=False),
                 num_return_sequences=2)


def test_shared_prefill_samples_what_k_full_prefills_sample(lora_bundle, monkeypatch):
    """Prefilling each prompt once and repeating its cache k times is exact: same seed, same samples
    and the same raw logits as letting ``generate`` prefill all b·k rows (left padding included)."""
    import gemkit.generation as generation

    model, tok = lora_bundle.model, lora_bundle.tokenizer
    prompts = ["Add 2 and 3.", "What is seven times eight, worked step by step?"]
    sampling = SamplingConfig(max_new_tokens=8)

    def sample() -> generation.Generation:
        torch.manual_seed(3)
        return generate(model, tok, prompts, sampling=sampling, num_return_sequences=3, output_logits=True)

    calls = []
    real = generation._shared_prefill

    def recording(*args):
        prefilled = real(*args)
        calls.append((args[2], prefilled is not None))
        return prefilled

    monkeypatch.setattr(generation, "_shared_prefill", recording)
    shared = sample()
    monkeypatch.setattr(generation, "_shared_prefill", lambda *a: None)
    full = sample()
    assert calls == [(3, True)]  # the prefill applied (under transformers 5.19 it once fell back silently)
    assert shared.response_ids == full.response_ids and shared.texts == full.texts
    assert shared.prompt_index == full.prompt_index == [0, 0, 0, 1, 1, 1]
    assert torch.allclose(shared.logits, full.logits, atol=1e-4)


def test_top_k_below_one_is_a_clear_error():
    with pytest.raises(ConfigError, match="use null"):
        SamplingConfig(top_k=0)
    assert SamplingConfig(top_k=1).top_k == 1
