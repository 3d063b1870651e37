"""Preference-eval throughput: gemkit's batched, length-bucketed scorer against a one-pair loop.

    .venv/bin/python benchmarks/perf_eval.py                         # smollm2-135m, 64 arithmetic pairs, CPU
    .venv/bin/python benchmarks/perf_eval.py --reference base        # with LoRA: r = β(log π − log π_ref)
    .venv/bin/python benchmarks/perf_eval.py --model-size 1b --device cuda

Both sides score the same pairs with the same model, precision and threads, dropout off, and compute
the DPO implicit reward r(q, a) = β · Σ_t log π(a_t | q, a_<t) (minus the reference's, with
``--reference base``: the base model with the LoRA adapters disabled). A pair is correct when
r(chosen) > r(rejected).

- ``gemkit``: :func:`gemkit.evaluation.preference.pairwise_accuracy` — each pair's prompt runs
  once and its chosen and rejected run on the prompt's KV cache; pairs are sorted by length and
  scored in padded batches of about ``--batch-size`` sequences, LM head over the responses only.
- ``one-pair loop`` (the official-code style, our code): for each pair, one forward over
  prompt + chosen and one over prompt + rejected (two more for the reference), batch of one, full
  logits, log-softmax, gather.

The accuracies must be identical and every pair must get the same verdict; otherwise the script
fails. Target (issue 7): batched ≥ 3× the pairs/s of the loop.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _perf_common as common  # noqa: E402

TARGET_SPEEDUP = 3.0


def loop_rewards(bundle: Any, pairs: list[Any], *, beta: float, reference: str, max_length: int) -> list[tuple[float, float]]:
    """(r(chosen), r(rejected)) per pair, one sequence per forward, in pair order."""
    import torch

    from gemkit.data.encoding import encode_sequence

    model, tokenizer = bundle.model, bundle.tokenizer

    def logp(m: Any, ids: torch.Tensor, start: int) -> float:
        logits = m(input_ids=ids, use_cache=False).logits[0, start - 1:-1].float()
        return float(torch.log_softmax(logits, -1).gather(-1, ids[0, start:, None]).sum())

    def reward(prompt: Any, response: str) -> float:
        seq = encode_sequence(tokenizer, prompt, response, max_length=max_length)
        ids = torch.tensor([seq.input_ids], device=bundle.device)
        value = logp(model, ids, seq.response_start)
        if reference == "base":
            with model.disable_adapter():
                value -= logp(model, ids, seq.response_start)
        return beta * value

    with torch.no_grad():
        return [(reward(p.prompt, p.chosen), reward(p.prompt, p.rejected)) for p in pairs]


def main(argv: list[str] | None = None) -> None:
    parser = common.base_parser(__doc__.splitlines()[0], default_steps=3, default_warmup=1)
    parser.add_argument("--pairs", type=int, default=64, help="Built-in arithmetic pairs scored per repetition.")
    parser.add_argument("--batch-size", type=int, default=8, help="gemkit's eval batch (the `gemkit eval` default).")
    parser.add_argument("--reference", choices=["none", "base"], default="none",
                        help="none: r = β log π; base: load LoRA adapters and subtract the adapter-disabled model.")
    parser.add_argument("--profile", action="store_true",
                        help="After timing, run one more pass of each variant under torch.profiler; report top ops.")
    args = common.finish_args(parser.parse_args(argv))
    if args.pairs < 1 or args.batch_size < 1:
        raise SystemExit(f"Error: --pairs and --batch-size must be >= 1, got {args.pairs} and {args.batch_size}")
    common.setup_process(args.threads)

    import time

    import torch

    from gemkit.data.arithmetic import builtin_heldout_pairs
    from gemkit.evaluation.context import EvalContext
    from gemkit.evaluation.preference import PreferenceScoring, pair_credit, pairwise_accuracy
    from gemkit.models import LoraSpec, ModelSpec, load_model

    torch.manual_seed(args.seed)
    env = common.environment(args)
    bundle = load_model(ModelSpec(name=args.model_name, device=args.device, dtype=args.dtype, seed=args.seed),
                        lora=LoraSpec() if args.reference == "base" else None)
    bundle.model.eval()
    pairs = builtin_heldout_pairs(args.pairs, args.seed + 1)
    scoring = PreferenceScoring(reference=args.reference)
    ctx = EvalContext(bundle, batch_size=args.batch_size, seed=args.seed)
    outputs: dict[str, Any] = {}

    def gemkit_pass(chunk: list[Any]) -> None:
        outputs["gemkit"] = pairwise_accuracy(ctx, chunk, scoring)[1]

    def loop_pass(chunk: list[Any]) -> None:
        outputs["loop"] = loop_rewards(bundle, chunk, beta=scoring.beta, reference=args.reference,
                                       max_length=scoring.max_length)

    variants = {"gemkit": gemkit_pass, "loop": loop_pass}
    # A warm-up pass only has to trigger the one-time costs (allocator, kernels), so it scores one batch.
    for _ in range(args.warmup):
        for fn in variants.values():
            fn(pairs[:args.batch_size])
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for rep in range(args.steps):
        for name in names[rep % 2:] + names[:rep % 2]:  # alternate who goes first, so drift hits both
            common.sync(args.device)
            start = time.perf_counter()
            variants[name](pairs)
            common.sync(args.device)
            times[name].append(time.perf_counter() - start)

    items, loop = outputs["gemkit"], outputs["loop"]
    loop_correct = [pair_credit(c, r, scoring.ties) for c, r in loop]
    gemkit_correct = [item["correct"] for item in items]
    disagree = [item["id"] for item, mine in zip(items, loop_correct, strict=True) if item["correct"] != mine]
    gap = max(max(abs(item["reward_chosen"] - c), abs(item["reward_rejected"] - r))
              for item, (c, r) in zip(items, loop, strict=True))
    accuracy = {"gemkit": sum(gemkit_correct) / len(pairs), "loop": sum(loop_correct) / len(pairs)}
    if disagree:
        raise SystemExit(f"Error: the batched scorer and the one-pair loop disagree on {len(disagree)} of "
                         f"{len(pairs)} pairs ({', '.join(map(str, disagree[:5]))}); largest reward gap {gap:.3g}")

    median = {name: common.summarise(t)["median_s"] for name, t in times.items()}
    rate = {name: len(pairs) / median[name] for name in variants}
    speedup = rate["gemkit"] / rate["loop"]
    per_sequence = 2 if args.reference == "base" else 1  # policy (+ reference) forwards per sequence
    body = ["| variant | median s / pass | min–max s | pairs/s | forwards per pass | accuracy |",
            "|---|---:|---:|---:|---:|---:|"]
    labels = {"gemkit": f"gemkit batched + length-bucketed (batch {args.batch_size})", "loop": "one-pair loop"}
    for name in variants:
        sequences_per_forward = args.batch_size if name == "gemkit" else 1
        calls = -(-2 * len(pairs) // sequences_per_forward) * per_sequence
        body.append(f"| {labels[name]} | {median[name]:.3f} | {min(times[name]):.3f}–{max(times[name]):.3f} | "
                    f"{rate[name]:.1f} | {calls} | {accuracy[name]:.4f} |")
    body += ["", f"{len(pairs)} built-in held-out arithmetic pairs (seed {args.seed + 1}), reference={args.reference}, "
             f"β={scoring.beta}, aggregate=sum; {args.steps} timed passes per variant after {args.warmup} warm-up pass(es) "
             f"over {min(args.batch_size, len(pairs))} pairs, "
             f"alternating order; per-pair verdicts identical, largest |reward difference| {gap:.2e}."]
    ratios = [
        f"accuracy, gemkit / loop: {accuracy['gemkit']:.4f} / {accuracy['loop']:.4f} (identical, "
        f"{len(pairs) - len(disagree)}/{len(pairs)} verdicts agree)",
        f"throughput, gemkit pairs/s ÷ loop pairs/s: {speedup:.2f}x (target >= {TARGET_SPEEDUP}x: "
        f"{common.verdict(speedup, TARGET_SPEEDUP)})",
    ]
    notes = []
    if speedup < TARGET_SPEEDUP:
        notes.append(f"throughput target missed by {TARGET_SPEEDUP - speedup:.2f}x ({speedup:.2f}x against "
                     f"{TARGET_SPEEDUP}x)")
    if args.profile:  # untimed extra passes, so the profiler's overhead stays out of the timings
        for name in variants:
            body += ["", f"torch.profiler top ops by self time, one pass of {labels[name]}:", "",
                     *common.profile_top(lambda run=variants[name]: run(pairs), device=args.device)]
    if not args.no_report:
        common.append_report(args.report, title="Preference eval: batched vs one-pair loop (perf_eval.py)", env=env,
                             body=body, ratios=ratios, notes=notes)
    print("\n".join(body))
    common.print_ratios(ratios)


if __name__ == "__main__":
    main()
