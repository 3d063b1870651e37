"""Determinism on CPU: the same seed gives the same training metrics (within 1e-6) and the same
evaluation outputs; a different seed gives different ones, so the comparison is not vacuous."""
import pytest
import torch

from gemkit.data.arithmetic import builtin_heldout_pairs
from gemkit.data.records import PreferencePair
from gemkit.io import read_jsonl
from gemkit.models import LoraSpec
from gemkit.testing import tiny_bundle
from gemkit.train import TrainConfig, train
from gemkit.train.throughput import TIMING_KEYS

TIMING = TIMING_KEYS
# Short pairs keep a 3-step run around a second on 2 CPU cores.
PAIRS = [PreferencePair(f"{a} + {b} = ?", f"Final Answer: {a + b}", f"Final Answer: {a + b + 1}", id=f"p{a}{b}")
         for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (2, 9), (4, 4)]]


def run_metrics(tmp_path, method: str, seed: int, tag: str, **objective) -> list[dict[str, float]]:
    lora = LoraSpec(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    config = TrainConfig(method=method, model="random:tiny", out=str(tmp_path / f"{method}-{tag}"), max_steps=3,
                         batch_size=2, lr=1e-3, device="cpu", dtype="float32", seed=seed, max_length=64,
                         lora=lora, objective=objective)
    torch.manual_seed(seed)
    result = train(config, PAIRS, bundle=tiny_bundle(seed=seed, lora=lora), progress=False)
    rows = list(read_jsonl(result.log_path))
    assert [row["step"] for row in rows] == [1, 2, 3]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def assert_same(first, second):
    assert [sorted(r) for r in first] == [sorted(r) for r in second]
    for a, b in zip(first, second, strict=False):
        for key in a:
            assert a[key] == pytest.approx(b[key], abs=1e-6, rel=0), (key, a[key], b[key])


@pytest.mark.parametrize("method, options", [
    ("dpo", {}),
    ("sega", {"k": 2, "max_new_tokens": 6}),  # sampling, scoring and the update all seeded
])
def test_same_seed_same_training_metrics(tmp_path, method, options):
    first = run_metrics(tmp_path, method, 0, "a", **options)
    assert_same(first, run_metrics(tmp_path, method, 0, "b", **options))
    other = run_metrics(tmp_path, method, 1, "c", **options)
    assert any(abs(a["loss"] - b["loss"]) > 1e-6 for a, b in zip(first, other, strict=False))


def test_same_seed_same_evaluation_outputs():
    """Held-out generation (sampled, seeded) and per-pair log-prob margins repeat exactly."""
    from gemkit.generation import SamplingConfig, generate
    from gemkit.logprobs import response_logprobs
    from gemkit.train.objective import StepContext

    pairs = builtin_heldout_pairs(2, seed=1)

    def evaluate(seed: int):
        bundle = tiny_bundle(seed=0)
        torch.manual_seed(seed)
        gen = generate(bundle.model, bundle.tokenizer, [p.prompt for p in pairs],
                       sampling=SamplingConfig(max_new_tokens=6, temperature=1.0))
        ctx = StepContext(model=bundle.model, tokenizer=bundle.tokenizer,
                          config=TrainConfig(max_length=128, device="cpu"), device=torch.device("cpu"))
        with torch.no_grad():
            margins = response_logprobs(bundle.model, ctx.encode_pairs(pairs)).sum()
        return gen.texts, margins

    texts_a, margins_a = evaluate(0)
    texts_b, margins_b = evaluate(0)
    assert texts_a == texts_b
    assert torch.allclose(margins_a, margins_b, atol=1e-6, rtol=0)
    assert evaluate(1)[0] != texts_a


def test_tiny_bundle_matches_the_loader_for_the_same_seed():
    from gemkit.models import ModelSpec, load_model

    loaded = load_model(ModelSpec(name="random:tiny", device="cpu", dtype="float32", seed=3)).model.state_dict()
    built = tiny_bundle(seed=3).model.state_dict()
    assert loaded.keys() == built.keys()
    assert all(torch.equal(loaded[k], built[k]) for k in loaded)
