"""The group-step sides shared by perf_sega_vs_grpo.py and perf_sega_vllm.py.

A group step on every side: sample k candidates per prompt from the current policy, score each with
GEM's entropy score (Eq. 1), centre within the group, update. gemkit's side is SEGA through the
engine (``generator`` hf or vllm); the peer is TRL's GRPOTrainer, whose reward function gives the
same entropy scores from one extra no-grad forward. Both draw with temperature 0.9, top-p 0.95, no
top-k, and every candidate is exactly ``--new-tokens`` long on every side (:func:`fix_lengths`,
:func:`fix_vllm_lengths`), so the sides do the same work whatever text is sampled.

Kept apart from _perf_common.py (the harness every perf script uses) to keep each module short.
"""
from __future__ import annotations

import argparse
import functools
import tempfile
from typing import Any

import _perf_common as common

LR = 1e-5
TEMPERATURE = 0.9
TOP_P = 0.95
#: the templated CoT prompt's length in tokens, about; only the attention term of the FLOPs uses it
PROMPT_TOKENS = 90.0


def add_group_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--k", type=int, default=4, help="Candidates per prompt (TRL num_generations).")
    parser.add_argument("--prompts", type=int, default=1, help="Prompts per step.")
    parser.add_argument("--new-tokens", type=int, default=64, help="Tokens per candidate (exactly).")


def step_pairs(args: argparse.Namespace) -> list[Any]:
    """The built-in arithmetic prompts of every step, warm-up included (the same on every side)."""
    from gemkit.data.arithmetic import builtin_train_pairs

    return builtin_train_pairs(args.prompts * (args.warmup + args.steps), args.seed)


# ------------------------------------------------------------------------------- fixed lengths
def fix_lengths(model: Any, new_tokens: int) -> None:
    """HF ``generate``: every sampled candidate gets exactly ``new_tokens`` tokens (EOS suppressed until then)."""
    model.generate = functools.partial(model.generate, min_new_tokens=new_tokens)


def fix_vllm_lengths() -> None:
    """vLLM: every request in this process gets ``min_tokens`` = ``max_tokens`` (vLLM masks EOS and
    the stop ids until then), the counterpart of :func:`fix_lengths`.

    Patched on ``vllm.LLM.generate`` because neither gemkit's ``SamplingConfig`` nor the benchmark
    reaches the ``SamplingParams`` gemkit builds; the same patch holds TRL's colocated engine to it.
    """
    from vllm import LLM

    if getattr(LLM.generate, "_fixed_lengths", False):
        return
    original = LLM.generate

    def generate(self: Any, prompts: Any, sampling_params: Any = None, *args: Any, **kwargs: Any) -> Any:
        for params in sampling_params if isinstance(sampling_params, list) else [sampling_params]:
            if params is not None and params.max_tokens is not None:
                params.min_tokens = params.max_tokens
        return original(self, prompts, sampling_params, *args, **kwargs)

    generate._fixed_lengths = True  # type: ignore[attr-defined]
    LLM.generate = generate  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------- sides
def sega_side(args: argparse.Namespace, bundle: Any, pairs: list[Any], memory: common.PeakMemory, *,
              side: str = "gemkit", label: str = "gemkit SEGA (engine)", generator: str = "hf") -> common.SideResult:
    """SEGA through gemkit's engine, sampling with ``generator`` (hf or vllm)."""
    from gemkit.models import LoraSpec
    from gemkit.train import TrainConfig

    config = TrainConfig(method="sega", model=args.model_name, out=tempfile.mkdtemp(prefix="perf-sega-"),
                         max_steps=args.warmup + args.steps, batch_size=args.prompts, lr=LR, warmup_ratio=0.0,
                         max_grad_norm=1.0, max_length=1024, seed=args.seed, dtype=args.dtype, device=args.device,
                         lora=LoraSpec(), objective={"k": args.k, "max_new_tokens": args.new_tokens,
                                                     "temperature": TEMPERATURE, "top_p": TOP_P,
                                                     "generator": generator})
    times, rows = common.run_gemkit_engine(args, config, pairs, bundle, memory)
    generated = [row["response_length"] * args.k * args.prompts for row in rows]
    return common.SideResult(side, label, times, sum(generated) / len(generated), memory.peak_mib(),
                             memory.baseline_mib, memory.method)


def entropy_reward(bundle: Any, k: int) -> Any:
    """A TRL reward function giving GEM's entropy score: one extra no-grad forward over the group
    (logits only over the completion window), then gemkit's own ``entropy`` scorer."""
    import torch

    from gemkit.builtin.entropy import EntropyConfig, EntropyScorer
    from gemkit.data.encoding import EncodedSequence, collate, encode_prompt
    from gemkit.logprobs import response_logprobs
    from gemkit.scoring import ScoringInputs

    scorer = EntropyScorer(EntropyConfig())
    model, tokenizer = bundle.model, bundle.tokenizer

    def entropy_score(prompts: list[Any], completions: list[Any], completion_ids: list[list[int]],
                      **kwargs: Any) -> list[float]:
        eos = tokenizer.eos_token_id
        responses = [ids[:ids.index(eos)] if eos in ids else list(ids) for ids in completion_ids]
        sequences = [EncodedSequence(encode_prompt(tokenizer, p) + r, len(encode_prompt(tokenizer, p)))
                     for p, r in zip(prompts, responses, strict=False)]
        batch = collate(sequences, tokenizer.pad_token_id, side="right").to(bundle.device)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                scores = response_logprobs(model, batch, with_entropy=True)
        finally:
            model.train(was_training)
        width = max(1, max(len(r) for r in responses))
        ids = torch.zeros((len(responses), width), dtype=torch.long)
        mask = torch.zeros((len(responses), width))
        entropies = torch.zeros((len(responses), width))
        for row, response in enumerate(responses):
            positions = scores.mask[row].nonzero().squeeze(-1)[:len(response)]
            ids[row, :len(response)] = torch.tensor(response, dtype=torch.long)
            mask[row, :len(response)] = 1.0
            entropies[row, :len(response)] = scores.token_entropies[row, positions].float().cpu()  # type: ignore[index]
        texts = tokenizer.batch_decode(responses, skip_special_tokens=True)
        inputs = ScoringInputs(ids, mask, entropies, torch.zeros_like(entropies), None, texts, tokenizer, k)
        return scorer.score(inputs).scores.tolist()

    return entropy_score


def grpo_side(args: argparse.Namespace, bundle: Any, pairs: list[Any], memory: common.PeakMemory, *,
              side: str = "trl", label: str | None = None, **grpo_options: Any) -> common.SideResult:
    """TRL's GRPOTrainer on the same prompts and settings; ``grpo_options`` add to or override its
    GRPOConfig (e.g. ``use_vllm=True``). With vLLM, ``extra["vllm_dtype"]`` is the dtype its engine chose."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from gemkit.data.records import as_messages
    from gemkit.gem.group import COT_SYSTEM_PROMPT

    rows = [{"prompt": [{"role": "system", "content": COT_SYSTEM_PROMPT}, *as_messages(p.prompt)]} for p in pairs]
    timer = common.trl_step_callback(args, memory)
    options = dict(output_dir=tempfile.mkdtemp(prefix="perf-grpo-trl-"),
                   per_device_train_batch_size=args.prompts * args.k, num_generations=args.k,
                   gradient_accumulation_steps=1, max_steps=args.warmup + args.steps, learning_rate=LR,
                   lr_scheduler_type="cosine", warmup_steps=0, max_grad_norm=1.0,
                   max_completion_length=args.new_tokens, temperature=TEMPERATURE, top_p=TOP_P, top_k=0, beta=0.0,
                   num_iterations=1, scale_rewards="none", log_completions=False, shuffle_dataset=False,
                   **common.trl_precision_kwargs(args))
    config = GRPOConfig(**{**options, **grpo_options})
    trainer = GRPOTrainer(model=bundle.model, reward_funcs=[entropy_reward(bundle, args.k)], args=config,
                          train_dataset=Dataset.from_list(rows), processing_class=bundle.tokenizer, callbacks=[timer])
    extra = {}
    if getattr(trainer, "vllm_generation", None) is not None:  # TRL passes vLLM no dtype: it picks one itself
        extra["vllm_dtype"] = str(trainer.vllm_generation.llm.llm_engine.model_config.dtype).removeprefix("torch.")
    trainer.train()
    lengths = [row["completions/mean_length"] for row in trainer.state.log_history if "completions/mean_length" in row]
    lengths = lengths[args.warmup:] or lengths
    return common.SideResult(side, label or f"TRL {common.version_of('trl')} GRPOTrainer", timer.times[args.warmup:],
                             sum(lengths) / len(lengths) * args.k * args.prompts, memory.peak_mib(),
                             memory.baseline_mib, memory.method, extra=extra)


def step_flops(args: argparse.Namespace, model: Any, generated: float) -> float:
    """Useful work of one step: sampling (a forward per generated token) + one training forward/backward
    over prompt + candidates. A peer's extra passes (TRL's reward forward) are not counted as useful."""
    return common.nominal_flops(model, forward_tokens=generated,
                                train_tokens=generated + PROMPT_TOKENS * args.k * args.prompts,
                                context=PROMPT_TOKENS + args.new_tokens / 2)
