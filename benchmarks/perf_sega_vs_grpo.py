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

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _perf_common as common  # noqa: E402
import _perf_group as group  # noqa: E402

TARGET_SPEEDUP = 1.5


def run_side(args: Any) -> None:
    from gemkit.models import LoraSpec, ModelSpec, load_model

    common.setup_process(args.threads)
    import torch

    torch.manual_seed(args.seed)
    bundle = load_model(ModelSpec(name=args.model_name, device=args.device, dtype=args.dtype, seed=args.seed),
                        lora=LoraSpec())
    group.fix_lengths(bundle.model, args.new_tokens)
    pairs = group.step_pairs(args)
    memory = common.PeakMemory(args.device)
    memory.reset()
    result = common.measure_side(args, group.sega_side if args.side == "gemkit" else group.grpo_side, bundle, pairs,
                                 memory)
    result.flops_per_step = group.step_flops(args, bundle.model, result.tokens_per_step)
    common.write_side(args, result)


def main(argv: list[str] | None = None) -> None:
    parser = common.base_parser(__doc__.splitlines()[0], default_steps=3, default_warmup=1)
    group.add_group_flags(parser)
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
