"""SEGA learning check (not a test): does training move the entropy score, and what happens to accuracy?

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sega_learning.py --heldout 8 --out runs/sega_learning  # ~17 min, 1 CPU thread
    .venv/bin/python benchmarks/sega_learning.py --render runs/sega_learning/results.json --report reports/sega_learning.md

Trains ``smollm2-135m`` with LoRA for ``--steps`` SEGA steps (k candidates per prompt, entropy
scorer, identity mapping, the paper's centred advantages) on the built-in arithmetic prompts, and
measures on held-out prompts, before and after, with the same seeded sampling:

- the mean entropy score S (Eq. 1) of k sampled candidates per prompt — the quantity SEGA raises;
- its parts H_final and the fork term, the fraction with a ``Final Answer`` marker, the length;
- answer accuracy: sampled candidates (mean over k) and greedy decoding, by exact final answer.

The run writes ``results.json`` (and the engine's ``train_log.jsonl``); the report is rendered from it.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch


def evaluate(bundle: Any, heldout: list[dict[str, str]], *, k: int, max_new_tokens: int, seed: int) -> dict[str, Any]:
    """Entropy score and accuracy of the current policy on ``heldout`` (seeded, no grad)."""
    from gemkit.builtin.entropy import EntropyConfig, EntropyScorer
    from gemkit.data.arithmetic import extract_final_answer
    from gemkit.gem.group import COT_SYSTEM_PROMPT, score_groups
    from gemkit.generation import SamplingConfig, generate

    prompts = [row["question"] for row in heldout]
    answers = [row["answer"] for row in heldout]
    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.9, top_p=0.95)
    torch.manual_seed(seed)
    with torch.no_grad():
        group = score_groups(bundle.model, bundle.tokenizer, prompts, k=k, max_length=1024, sampling=sampling, scorer=EntropyScorer(EntropyConfig()),
                             mapping=lambda s: s.clone(), answers=answers)
    sampled_correct = [extract_final_answer(t) == answers[i] for t, i in zip(group.generation.texts,
                                                                            group.generation.prompt_index, strict=True)]
    greedy = generate(bundle.model, bundle.tokenizer, prompts, system=COT_SYSTEM_PROMPT,
                      sampling=SamplingConfig(max_new_tokens=max_new_tokens, do_sample=False))
    greedy_correct = [extract_final_answer(t) == a for t, a in zip(greedy.texts, answers, strict=True)]
    metrics = group.metrics()
    return {
        "score_mean": metrics["score_mean"],
        "h_final_mean": metrics["h_final_mean"],
        "fork_entropy_mean": metrics["fork_entropy_mean"],
        "frac_finished": metrics["frac_finished"],
        "response_length": metrics["response_length"],
        "sampled_accuracy": sum(sampled_correct) / len(sampled_correct),
        "greedy_accuracy": sum(greedy_correct) / len(greedy_correct),
        "greedy_finished": sum(extract_final_answer(t) is not None for t in greedy.texts) / len(greedy.texts),
        "examples": [{"question": prompts[0], "answer": answers[0], "sampled": group.generation.texts[0],
                      "greedy": greedy.texts[0]}],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from gemkit.data.arithmetic import builtin_heldout, builtin_train_pairs
    from gemkit.models import LoraSpec, ModelSpec, load_model
    from gemkit.train import TrainConfig, train

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    objective = {"k": args.k, "max_new_tokens": args.max_new_tokens, "temperature": 0.9, "top_p": 0.95,
                 "scorer": "entropy", "mapping": "identity"}
    config = TrainConfig(method="sega", model=args.model, out=str(out), max_steps=args.steps, batch_size=args.batch_size,
                         lr=args.lr, seed=args.seed, device="cpu", dtype="float32", objective=objective,
                         lora=LoraSpec(r=args.lora_r))
    bundle = load_model(ModelSpec(name=args.model, device="cpu", dtype="float32", seed=args.seed), lora=config.lora)
    heldout = builtin_heldout(args.heldout, seed=1)
    results: dict[str, Any] = {"config": {**vars(args), "objective": objective}, "machine": platform.platform(),
                               "status": "running"}
    started = time.perf_counter()
    results["before"] = evaluate(bundle, heldout, k=args.k, max_new_tokens=args.max_new_tokens, seed=args.seed + 1)
    print("before:", json.dumps({k: v for k, v in results["before"].items() if k != "examples"}), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))  # a partial record if training dies
    trained = train(config, builtin_train_pairs(args.train_size, seed=args.seed), bundle=bundle, progress=False)
    results["train"] = {"steps": trained.steps, "wall_s": trained.wall_s, "last": trained.last_metrics,
                        "log": str(trained.log_path)}
    results["after"] = evaluate(bundle, heldout, k=args.k, max_new_tokens=args.max_new_tokens, seed=args.seed + 1)
    print("after:", json.dumps({k: v for k, v in results["after"].items() if k != "examples"}), flush=True)
    results["wall_s"] = time.perf_counter() - started
    results["status"] = "done" if trained.steps == args.steps else f"stopped after {trained.steps} steps"
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results


def render(results: dict[str, Any], log_rows: list[dict[str, Any]]) -> str:
    """The markdown report, from ``results.json`` and the training log only."""
    cfg, before, after = results["config"], results.get("before"), results.get("after")
    lines = [f"## Run: lr {cfg['lr']}, {cfg['steps']} steps", "",
             f"Command: `.venv/bin/python benchmarks/sega_learning.py --steps {cfg['steps']} --k {cfg['k']} "
             f"--max-new-tokens {cfg['max_new_tokens']} --batch-size {cfg['batch_size']} --lr {cfg['lr']} "
             f"--heldout {cfg['heldout']} --seed {cfg['seed']}` (status: **{results.get('status')}**, "
             f"{results.get('wall_s', float('nan')) / 60:.1f} min on {results.get('machine')}).", "",
             f"Model `{cfg['model']}` with LoRA r={cfg['lora_r']}; SEGA with the `entropy` scorer (λ=1, ρ=0.1, "
             "marker span, tail:0.2 fallback), identity mapping, centred advantages, summed log-prob; "
             f"k={cfg['k']}, T=0.9, top_p=0.95, {cfg['max_new_tokens']} new tokens; {cfg['batch_size']} prompt(s) per "
             f"step from {cfg['train_size']} built-in arithmetic prompts. Held-out: {cfg['heldout']} built-in test "
             f"problems, {cfg['k']} seeded samples each, plus greedy decoding.", ""]
    if before is None or after is None:
        lines += ["**The run did not finish; no before/after numbers.**", ""]
    else:
        rows = [("mean entropy score S (Eq. 1) ↑ optimised", "score_mean"), ("H_final (mean)", "h_final_mean"),
                ("fork term (mean top-m H)", "fork_entropy_mean"), ("fraction with `Final Answer`", "frac_finished"),
                ("response length (tokens)", "response_length"), ("sampled-answer accuracy", "sampled_accuracy"),
                ("greedy accuracy", "greedy_accuracy"), ("greedy with a parsable final answer", "greedy_finished")]
        lines += ["| held-out metric | before | after | change |", "|---|---|---|---|"]
        for label, key in rows:
            lines.append(f"| {label} | {before[key]:.4f} | {after[key]:.4f} | {after[key] - before[key]:+.4f} |")
        moved = after["score_mean"] - before["score_mean"]
        lines += ["", f"The held-out score moved by {moved:+.4f}: "
                  + ("in the direction SEGA optimises." if moved > 0 else "**not** in the direction SEGA optimises."), ""]
    if log_rows:
        lines += ["### Training log (every 5th step)", "",
                  "| step | loss | score_mean | h_final | fork | finished | length | adv. std | grad norm |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for row in log_rows:
            if row.get("step", 0) % 5 == 0 or row.get("step") == 1:
                lines.append("| {step} | {loss:.4f} | {score_mean:.4f} | {h_final_mean:.3f} | {fork_entropy_mean:.3f} | "
                             "{frac_finished:.2f} | {response_length:.1f} | {advantage_std:.3f} | {grad_norm:.2f} |"
                             .format(**row))
        first, last = log_rows[:5], log_rows[-5:]
        avg = lambda rows: sum(r["score_mean"] for r in rows) / len(rows)  # noqa: E731
        lines += ["", f"Training-batch score, mean of the first 5 steps {avg(first):.4f} vs the last 5 {avg(last):.4f} "
                  "(on-policy samples of different prompts, so noisy).", ""]
    if after is not None:
        ex = after["examples"][0]
        lines += ["### One held-out example after training", "", f"Question: {ex['question']} (gold {ex['answer']})", "",
                  "Greedy:", "", "```", ex["greedy"], "```", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--out", default="runs/sega_learning")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--train-size", type=int, default=64)
    parser.add_argument("--heldout", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--render", nargs="+", help="Only render these results.json files into --report.")
    parser.add_argument("--report", default="reports/sega_learning.md")
    args = parser.parse_args()
    if args.render:
        sections = []
        for name in args.render:
            results_path = Path(name)
            log_path = results_path.parent / "train_log.jsonl"
            log_rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()] \
                if log_path.exists() else []
            sections.append(render(json.loads(results_path.read_text()), log_rows))
        Path(args.report).write_text("# SEGA learning check\n\n" + "\n".join(sections))
        print(f"wrote {args.report}")
        return
    run(args)


if __name__ == "__main__":
    main()
