"""One SEGA step against one TRL GRPOTrainer step, side by side in one run.

    .venv/bin/python benchmarks/perf_sega_vs_grpo.py                 # smollm2-135m, 1 prompt × k=4 × 64 tokens, CPU
    .venv/bin/python benchmarks/perf_sega_vs_grpo.py --model-size 1b --device cuda

A step on both sides: sample k candidates for one prompt from the current policy, score each with
GEM's entropy score (Eq. 1), centre within the group, update. gemkit gets the entropies from the
same forward that gives log π (no extra pass); TRL's GRPOTrainer takes rewards from a reward
function, which here runs one batched no-grad forward over prompt + completions (generously:
logits only over the completion window) and applies gemkit's own ``entropy`` scorer — so the
rewards are the same numbers and only the extra pass differs.

Both sides: the same model (gemkit's loader, LoRA r=16 α=32 dropout 0.05 on q/k/v/o), prompt
(built-in arithmetic, GEM's CoT system prompt), temperature 0.9, top-p 0.95, no top-k, k=4,
max 64 new tokens, no KL term (SEGA default; TRL beta=0), no reward std scaling, the same
precision and thread count, no gradient checkpointing. ``min_new_tokens`` = max is set on the
model's ``generate`` for both sides, so every candidate is exactly 64 tokens and both do the same
work whatever the sampled text.

Target (issue 7): SEGA ≥ 1.5× faster than TRL GRPO, and no more peak memory.
"""
from __future__ import annotations

import functools
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _perf_common as common  # noqa: E402

TARGET_SPEEDUP = 1.5
LR = 1e-5


def fix_lengths(model: Any, new_tokens: int) -> None:
    """Every sampled candidate gets exactly ``new_tokens`` tokens (EOS suppressed until then)."""
    model.generate = functools.partial(model.generate, min_new_tokens=new_tokens)


def sega_side(args: Any, bundle: Any, pairs: list[Any], memory: common.PeakMemory) -> common.SideResult:
    from gemkit.models import LoraSpec
    from gemkit.train import TrainConfig

    config = TrainConfig(method="sega", model=args.model_name, out=tempfile.mkdtemp(prefix="perf-sega-"),
                         max_steps=args.warmup + args.steps, batch_size=args.prompts, lr=LR, warmup_ratio=0.0,
                         max_grad_norm=1.0, max_length=1024, seed=args.seed, dtype=args.dtype, device=args.device,
                         lora=LoraSpec(), objective={"k": args.k, "max_new_tokens": args.new_tokens,
                                                     "temperature": 0.9, "top_p": 0.95})
    times, rows = common.run_gemkit_engine(args, config, pairs, bundle, memory)
    generated = [row["response_length"] * args.k * args.prompts for row in rows]
    return common.SideResult("gemkit", "gemkit SEGA (engine)", times, sum(generated) / len(generated),
                             memory.peak_mib(), memory.baseline_mib, memory.method)


def entropy_reward(bundle: Any, k: int) -> Any:
    """A TRL reward function giving GEM's entropy score: one extra no-grad forward over the group."""
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


def grpo_side(args: Any, bundle: Any, pairs: list[Any], memory: common.PeakMemory) -> common.SideResult:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from gemkit.data.records import as_messages
    from gemkit.gem.group import COT_SYSTEM_PROMPT

    rows = [{"prompt": [{"role": "system", "content": COT_SYSTEM_PROMPT}, *as_messages(p.prompt)]} for p in pairs]
    timer = common.trl_step_callback(args, memory)
    config = GRPOConfig(output_dir=tempfile.mkdtemp(prefix="perf-grpo-trl-"),
                        per_device_train_batch_size=args.prompts * args.k, num_generations=args.k,
                        gradient_accumulation_steps=1, max_steps=args.warmup + args.steps, learning_rate=LR,
                        lr_scheduler_type="cosine", warmup_steps=0, max_grad_norm=1.0,
                        max_completion_length=args.new_tokens, temperature=0.9, top_p=0.95, top_k=0, beta=0.0,
                        num_iterations=1, scale_rewards="none", log_completions=False, shuffle_dataset=False,
                        **common.trl_precision_kwargs(args))
    trainer = GRPOTrainer(model=bundle.model, reward_funcs=[entropy_reward(bundle, args.k)], args=config,
                          train_dataset=Dataset.from_list(rows), processing_class=bundle.tokenizer, callbacks=[timer])
    trainer.train()
    lengths = [row["completions/mean_length"] for row in trainer.state.log_history if "completions/mean_length" in row]
    lengths = lengths[args.warmup:] or lengths
    return common.SideResult("trl", f"TRL {common.version_of('trl')} GRPOTrainer", timer.times[args.warmup:],
                             sum(lengths) / len(lengths) * args.k * args.prompts, memory.peak_mib(),
                             memory.baseline_mib, memory.method)


def run_side(args: Any) -> None:
    from gemkit.data.arithmetic import builtin_train_pairs
    from gemkit.models import LoraSpec, ModelSpec, load_model

    common.setup_process(args.threads)
    import torch

    torch.manual_seed(args.seed)
    bundle = load_model(ModelSpec(name=args.model_name, device=args.device, dtype=args.dtype, seed=args.seed),
                        lora=LoraSpec())
    fix_lengths(bundle.model, args.new_tokens)
    pairs = builtin_train_pairs(args.prompts * (args.warmup + args.steps), args.seed)
    memory = common.PeakMemory(args.device)
    memory.reset()
    result = common.measure_side(args, sega_side if args.side == "gemkit" else grpo_side, bundle, pairs, memory)
    prompt_tokens = 90.0  # the templated CoT prompt, about; only the attention term uses it
    generated = result.tokens_per_step
    # Useful work of one step: sampling (a forward per generated token) + one training forward/backward
    # over prompt + candidates. TRL's extra reward forward is not counted as useful.
    result.flops_per_step = common.nominal_flops(
        bundle.model, forward_tokens=generated, train_tokens=generated + prompt_tokens * args.k * args.prompts,
        context=prompt_tokens + args.new_tokens / 2)
    common.write_side(args, result)


def main(argv: list[str] | None = None) -> None:
    parser = common.base_parser(__doc__.splitlines()[0], default_steps=3, default_warmup=1)
    parser.add_argument("--k", type=int, default=4, help="Candidates per prompt (TRL num_generations).")
    parser.add_argument("--prompts", type=int, default=1, help="Prompts per step.")
    parser.add_argument("--new-tokens", type=int, default=64, help="Tokens per candidate (exactly).")
    parser.add_argument("--profile", action="store_true", help="Run each side under torch.profiler; report top ops.")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = common.finish_args(parser.parse_args(argv))
    if args.side:
        run_side(args)
        return
    common.setup_process(args.threads)
    env = common.environment(args)
    results = common.run_sides(__file__, argv, ["gemkit", "trl"], in_process=common.in_process_runner(args, run_side))
    workload = (f"{args.prompts} prompt × k={args.k} × {args.new_tokens} new tokens per step (tokens = generated "
                f"tokens); {args.steps} timed steps after {args.warmup} warm-up per side; peak memory is "
                f"{results['gemkit'].memory_method} over the timed steps.")
    common.compare_and_report(args, env, results, common.Comparison(
        "SEGA vs TRL GRPOTrainer (perf_sega_vs_grpo.py)", "SEGA", "TRL GRPO", "TRL", TARGET_SPEEDUP, workload,
        "generated tokens per step"))


if __name__ == "__main__":
    main()
