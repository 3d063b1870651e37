"""Sampling responses with the model's chat template: one batched ``generate`` for all prompts.

Used for GEM's candidates (k per prompt), GRPO/PPO rollouts and benchmark answers alike, so every
method decodes the same way.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from gemkit.cpu_matmul import weight_major_linears
from gemkit.data.encoding import EncodedSequence, collate, encode_prompt
from gemkit.data.records import Text
from gemkit.errors import ConfigError
from gemkit.generated import Generation
from gemkit.logprobs import returned_cache
from gemkit.models.lora_merge import merged_lora
from gemkit.progress import items_bar
from gemkit.sampling import NucleusSampler
from gemkit.threads import adapt_threads

GENERATORS = ("hf", "vllm")


@dataclass
class SamplingConfig:
    """Decoding settings. ``top_k=None`` disables transformers' implicit top-k of 50."""

    max_new_tokens: int = field(default=256, metadata={"help": "Most tokens generated per response."})
    temperature: float = field(default=0.9, metadata={"help": "Sampling temperature (ignored when do_sample is false)."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling mass."})
    top_k: int | None = field(default=None, metadata={"help": "Top-k cut-off; None means no cut-off."})
    do_sample: bool = field(default=True, metadata={"help": "Sample (true) or decode greedily (false)."})
    generator: str = field(default="hf", metadata={"help": "Engine drawing the tokens: hf (transformers) or vllm."})

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.do_sample and self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0 when sampling, got {self.temperature}; use do_sample=false for greedy")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {self.top_k}; use null (None) to switch the top-k cut-off off")
        check_generator(self.generator)


def check_generator(generator: str) -> None:
    """Reject an unknown engine, and ``vllm`` when vllm is not installed (a spec lookup: nothing loads).

    Called by :class:`SamplingConfig` and, before any model loads, by ``gemkit eval --generator`` and
    the bench config's ``generator``.
    """
    if generator not in GENERATORS:
        raise ConfigError(f"generator must be one of {', '.join(GENERATORS)}, got {generator!r}")
    if generator == "vllm":
        from gemkit.generation_vllm import check_vllm_installed

        check_vllm_installed()


#: help of the sampling options shared by every objective that samples its own candidates
SAMPLING_HELP = {"temperature": {"help": "Sampling temperature."}, "top_p": {"help": "Nucleus sampling mass."},
                 "max_new_tokens": {"help": "Most tokens per candidate."},
                 "generator": {"help": "Engine sampling the candidates: hf (transformers) or vllm (pip install gemkit[vllm])."}}


@dataclass
class CandidateSampling:
    """The sampling options of an objective that samples its own candidates (SEGA, GRPO, rm-ppo).

    An objective's Config inherits them (redeclaring a field to change only its default) and
    calls :meth:`sampling` for the :class:`SamplingConfig` it decodes with.
    """

    temperature: float = field(default=0.9, metadata=SAMPLING_HELP["temperature"])
    top_p: float = field(default=0.95, metadata=SAMPLING_HELP["top_p"])
    max_new_tokens: int = field(default=128, metadata=SAMPLING_HELP["max_new_tokens"])
    generator: str = field(default="hf", metadata=SAMPLING_HELP["generator"])

    def __post_init__(self) -> None:
        self.sampling()  # the same checks as SamplingConfig, at config time

    def sampling(self) -> SamplingConfig:
        return SamplingConfig(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                              generator=self.generator)


@torch.no_grad()
def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[Text],
    *,
    sampling: SamplingConfig,
    num_return_sequences: int = 1,
    system: str | None = None,
    output_logits: bool = False,
    batch_size: int | None = None,
    progress: str | None = None,
) -> Generation:
    """Generate ``num_return_sequences`` responses per prompt, in batches of ``batch_size`` prompts.

    ``progress``: a label for a progress bar over the prompts (None: the enclosing evaluation's
    label, see :mod:`gemkit.progress`; no bar outside an evaluation).

    ``sampling.generator="vllm"`` draws the tokens with vLLM (:mod:`gemkit.generation_vllm`), which
    schedules all prompts itself (``batch_size`` and the progress bar do not apply) and returns no logits.
    """
    if not prompts:
        raise ConfigError("generate() needs at least one prompt")
    if sampling.generator == "vllm":
        if output_logits:
            raise ConfigError("generator=vllm returns token ids only; output_logits needs generator=hf "
                              "(or re-score the ids with a forward pass)")
        from gemkit.generation_vllm import generate_vllm

        return generate_vllm(model, tokenizer, prompts, sampling=sampling, num_return_sequences=num_return_sequences,
                             system=system)
    step = batch_size or len(prompts)
    parts = []
    with items_bar(len(prompts), unit="prompt", label=progress) as bar:
        for i in range(0, len(prompts), step):
            adapt_threads()
            parts.append(_generate_batch(model, tokenizer, prompts[i:i + step], i, sampling, num_return_sequences,
                                         system, output_logits))
            bar.update(len(prompts[i:i + step]))
    if len(parts) == 1:
        return parts[0]
    logits = None
    if output_logits:
        width = max(p.logits.shape[1] for p in parts)  # type: ignore[union-attr]
        logits = torch.cat([torch.nn.functional.pad(p.logits, (0, 0, 0, width - p.logits.shape[1]))  # type: ignore[union-attr]
                            for p in parts])
    return Generation(
        prompt_index=[i for p in parts for i in p.prompt_index],
        prompt_ids=[x for p in parts for x in p.prompt_ids],
        response_ids=[x for p in parts for x in p.response_ids],
        texts=[x for p in parts for x in p.texts],
        finished=[x for p in parts for x in p.finished],
        logits=logits,
    )


def _shared_prefill(model: Any, batch: Any, k: int) -> tuple[str, Any] | None:
    """The KV cache of the prompts prefilled once, repeated for their k samples (not k prefills).

    A causal LM's keys and values at the prompt positions do not depend on what follows, so the k
    samples of one prompt share them exactly. The b prompts but their last token (``[b, P−1]``) run
    through one forward that keeps its KV cache; the cache is repeated k times along the batch
    (``[b·k, h, P−1, d]``, the row order ``num_return_sequences=k`` would give) and ``generate``
    starts from it with the full (expanded) ``[b·k, P]`` ids, so it feeds only the last prompt token
    before sampling. Prefill cost: b·(P−1) positions instead of b·k·P. None where it does not apply (k = 1,
    one-token prompts, or a model whose cache is not a plain per-token attention cache). Returned
    with the keyword ``generate`` takes it by (:func:`gemkit.logprobs.returned_cache`).
    """
    if k < 2 or batch.input_ids.shape[1] < 2:
        return None
    prefill = model(input_ids=batch.input_ids[:, :-1], attention_mask=batch.attention_mask[:, :-1],
                    position_ids=batch.position_ids[:, :-1], use_cache=True, logits_to_keep=1)
    keyword, cache = returned_cache(prefill)
    if cache is None or not hasattr(cache, "batch_repeat_interleave") or any(getattr(cache, "is_linear", [True])):
        return None
    cache.batch_repeat_interleave(k)
    return keyword, cache


def _generate_batch(model: Any, tokenizer: Any, prompts: list[Text], offset: int, sampling: SamplingConfig,
                    k: int, system: str | None, output_logits: bool) -> Generation:
    from transformers import GenerationConfig, LogitsProcessorList

    if k > 1 and not sampling.do_sample:
        raise ConfigError(f"greedy decoding gives one answer per prompt; got num_return_sequences={k}. "
                          "Sample (do_sample=true) for several candidates.")
    encoded = [encode_prompt(tokenizer, p, system) for p in prompts]
    device = next(model.parameters()).device
    batch = collate([EncodedSequence(ids, len(ids)) for ids in encoded], tokenizer.pad_token_id, side="left").to(device)
    # transformers decodes greedily; when sampling, gemkit's NucleusSampler (the last logits
    # processor) has already drawn the token, so the greedy pick takes it. Rows arrive expanded
    # k times, so ``num_return_sequences`` stays 1.
    options: dict[str, Any] = dict(max_new_tokens=sampling.max_new_tokens, do_sample=False, num_return_sequences=1,
                                   pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                                   temperature=None, top_p=None, top_k=None, return_dict_in_generate=True,
                                   output_logits=output_logits)
    processors = LogitsProcessorList()
    if sampling.do_sample:
        processors.append(NucleusSampler(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k))
    was_training = model.training
    model.eval()  # no dropout while sampling; the update pass runs in train mode
    # On a GPU the adapter's extra matmuls are cheap next to the memory-bound step, and its BLAS
    # handles few-row inputs well: merge and switch matmuls on CPU only.
    on_cpu = device.type == "cpu"
    merge = merged_lora(model) if on_cpu and hasattr(model, "peft_config") else nullcontext()
    try:
        with merge, (weight_major_linears(model) if on_cpu else nullcontext()):
            inputs = dict(input_ids=batch.input_ids.repeat_interleave(k, dim=0),
                          attention_mask=batch.attention_mask.repeat_interleave(k, dim=0))
            prefilled = _shared_prefill(model, batch, k)
            if prefilled is not None:
                keyword, cache = prefilled
                inputs[keyword] = cache
            out = model.generate(**inputs, generation_config=GenerationConfig(**options), logits_processor=processors)
    finally:
        model.train(was_training)
    new_tokens = out.sequences[:, batch.input_ids.shape[1]:].tolist()
    response_ids, finished = [], []
    for row in new_tokens:
        if tokenizer.eos_token_id in row:
            cut = row.index(tokenizer.eos_token_id)
            response_ids.append(row[:cut])
            finished.append(True)
        else:
            response_ids.append(row)
            finished.append(False)
    logits = torch.stack(out.logits, dim=1).float() if output_logits else None
    return Generation(
        prompt_index=[offset + i // k for i in range(len(prompts) * k)],
        prompt_ids=[encoded[i // k] for i in range(len(prompts) * k)],
        response_ids=response_ids,
        texts=tokenizer.batch_decode(response_ids, skip_special_tokens=True),
        finished=finished,
        logits=logits,
    )
