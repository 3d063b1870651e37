"""gemkit DPO steps against TRL's DPOTrainer, side by side in one run.

    .venv/bin/python benchmarks/perf_dpo_vs_trl.py                   # smollm2-135m, 4 pairs × 256 tokens, fp32 CPU
    .venv/bin/python benchmarks/perf_dpo_vs_trl.py --model-size 8b --device cuda

Both sides: the same model (loaded by gemkit's loader, LoRA r=16 α=32 dropout 0.05 on q/k/v/o),
the same pairs (prompt + chosen/rejected of ≈256 tokens each), sigmoid loss with β=0.1, batch of
4 pairs, AdamW at the same learning rate, clipping at 1.0, the reference = the base model with the
adapter disabled, the same precision (no autocast) and thread count, no gradient checkpointing,
dropout kept. A step is zero_grad → policy + reference forwards → backward → optimizer step.

Target (issue 7): gemkit ≥ 1.1× faster than TRL, and no more peak memory.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _perf_common as common  # noqa: E402

TARGET_SPEEDUP = 1.1
LR = 5e-6


def long_pairs(tokenizer: Any, n: int, seq_tokens: int, seed: int) -> list[Any]:
    """``n`` arithmetic pairs whose prompt carries worked examples so prompt + response ≈ ``seq_tokens``.

    Sentences are added while the longer of prompt+chosen / prompt+rejected stays within
    ``seq_tokens`` (gemkit's tokenisation, EOS included), so no side ever truncates.
    """
    from gemkit.data.arithmetic import builtin_train_pairs
    from gemkit.data.encoding import encode_sequence
    from gemkit.data.records import PreferencePair

    base = builtin_train_pairs(n, seed)
    filler = builtin_train_pairs(n + 64, seed + 1)
    out = []
    for i, pair in enumerate(base):
        context = ""
        j = i
        while True:
            example = f"Example: {filler[j % len(filler)].prompt} {filler[j % len(filler)].chosen}\n"
            prompt = f"{context}{example}Question: {pair.prompt}"
            longest = max(len(encode_sequence(tokenizer, prompt, r).input_ids) for r in (pair.chosen, pair.rejected))
            if longest > seq_tokens:
                break
            context += example
            j += 1
        out.append(PreferencePair(f"{context}Question: {pair.prompt}", pair.chosen, pair.rejected,
                                  id=pair.id, answer=pair.answer))
    return out


def gemkit_side(args: Any, bundle: Any, pairs: list[Any], memory: common.PeakMemory) -> common.SideResult:
    from gemkit.data.encoding import encode_sequence
    from gemkit.models import LoraSpec
    from gemkit.train import TrainConfig

    out = tempfile.mkdtemp(prefix="perf-dpo-gemkit-")
    config = TrainConfig(method="dpo", model=args.model_name, out=out, max_steps=args.warmup + args.steps,
                         batch_size=args.batch, lr=LR, warmup_ratio=0.0, max_grad_norm=1.0,
                         max_length=args.seq_tokens, seed=args.seed, dtype=args.dtype, device=args.device,
                         lora=LoraSpec(), objective={"beta": 0.1, "loss": "sigmoid"})
    times, _ = common.run_gemkit_engine(args, config, pairs, bundle, memory)
    per_pair = [sum(len(encode_sequence(bundle.tokenizer, p.prompt, r).input_ids) for r in (p.chosen, p.rejected))
                for p in pairs]
    return common.SideResult("gemkit", "gemkit dpo (engine)", times, args.batch * sum(per_pair) / len(per_pair),
                             memory.peak_mib(), memory.baseline_mib, memory.method)


def trl_side(args: Any, bundle: Any, pairs: list[Any], memory: common.PeakMemory) -> common.SideResult:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from gemkit.data.encoding import render_prompt

    tokenizer = bundle.tokenizer
    # Plain-text rows with gemkit's rendered chat prompt: TRL appends the EOS token text to each
    # response, as gemkit appends the EOS id, so both see the same tokens.
    rows = [{"prompt": render_prompt(tokenizer, p.prompt), "chosen": p.chosen, "rejected": p.rejected} for p in pairs]
    timer = common.trl_step_callback(args, memory)
    config = DPOConfig(output_dir=tempfile.mkdtemp(prefix="perf-dpo-trl-"), per_device_train_batch_size=args.batch,
                       gradient_accumulation_steps=1, max_steps=args.warmup + args.steps, learning_rate=LR,
                       lr_scheduler_type="cosine", warmup_steps=0, max_grad_norm=1.0, beta=0.1, loss_type=["sigmoid"],
                       max_length=args.seq_tokens, disable_dropout=False, **common.trl_precision_kwargs(args))
    trainer = DPOTrainer(model=bundle.model, args=config, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, callbacks=[timer])
    data = trainer.train_dataset
    per_pair = [2 * len(r["prompt_ids"]) + len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in data]
    trainer.train()
    return common.SideResult("trl", f"TRL {common.version_of('trl')} DPOTrainer", timer.times[args.warmup:],
                             args.batch * sum(per_pair) / len(per_pair), memory.peak_mib(), memory.baseline_mib,
                             memory.method)


def run_side(args: Any) -> None:
    from gemkit.models import LoraSpec, ModelSpec, load_model

    common.setup_process(args.threads)
    import torch

    torch.manual_seed(args.seed)
    bundle = load_model(ModelSpec(name=args.model_name, device=args.device, dtype=args.dtype, seed=args.seed),
                        lora=LoraSpec())
    pairs = long_pairs(bundle.tokenizer, args.batch * (args.warmup + args.steps), args.seq_tokens, args.seed)
    memory = common.PeakMemory(args.device)
    memory.reset()
    result = common.measure_side(args, gemkit_side if args.side == "gemkit" else trl_side, bundle, pairs, memory)
    tokens = result.tokens_per_step
    result.flops_per_step = common.nominal_flops(bundle.model, forward_tokens=tokens, train_tokens=tokens,
                                                 context=tokens / (4 * args.batch))
    common.write_side(args, result)


def main(argv: list[str] | None = None) -> None:
    parser = common.base_parser(__doc__.splitlines()[0], default_steps=3, default_warmup=1)
    parser.add_argument("--batch", type=int, default=4, help="Pairs per step.")
    parser.add_argument("--seq-tokens", type=int, default=256, help="Most tokens of prompt + response per sequence.")
    parser.add_argument("--profile", action="store_true", help="Run each side under torch.profiler; report top ops.")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = common.finish_args(parser.parse_args(argv))
    if args.side:
        run_side(args)
        return
    common.setup_process(args.threads)
    env = common.environment(args)
    results = common.run_sides(__file__, argv, ["gemkit", "trl"], in_process=common.in_process_runner(args, run_side))
    workload = (f"{args.batch} pairs × ≤{args.seq_tokens} tokens per sequence (chosen and rejected), sigmoid β=0.1, "
                f"LoRA r=16; {args.steps} timed steps after {args.warmup} warm-up per side; peak memory is "
                f"{results['gemkit'].memory_method} over the timed steps; tokens = non-padding tokens of the "
                f"policy batch.")
    common.compare_and_report(args, env, results, common.Comparison(
        "DPO: gemkit vs TRL DPOTrainer (perf_dpo_vs_trl.py)", "gemkit", "TRL", "TRL", TARGET_SPEEDUP, workload,
        "tokens per step"))


if __name__ == "__main__":
    main()
