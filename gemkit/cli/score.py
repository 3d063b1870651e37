"""``gemkit score``: GEM Cognitive Filtering on its own — sample k candidates per prompt and score them.

One JSON line per candidate: ``prompt_id, index, text, token_ids, entropies, final_span, score,
reward, advantage, finished`` (``final_span`` is ``[start, end)`` in response-token positions;
``finished`` means the ``Final Answer`` marker was found; ``eos`` that the model stopped by itself).

With ``--gold`` each candidate is also checked against its prompt's gold ``answer`` (``correct``),
and the scorer diagnostics of :mod:`gemkit.gem.diagnostics` (does the score track correctness?)
are written to ``--diagnostics-out`` and printed as a table.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gemkit.config import parse_key_values
from gemkit.errors import ConfigError, DataError
from gemkit.evaluation.answer_check import CHECKS


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "score", help="Sample k CoT candidates per prompt and score them (GEM Eq. 1); --gold: does the score track "
                      "correctness?",
        description="Sample k CoT candidates per prompt and score them with a scorer plugin (GEM Eq. 1). Scorer "
                    "diagnostics: add --gold to check every candidate against the prompt's gold 'answer' and report "
                    "the AUROC and point-biserial correlation of score vs correctness and the best-of-k accuracy "
                    "when choosing by the score, against random choice and the oracle (pass@k), e.g. "
                    "`gemkit score --prompts builtin:arithmetic?n=32 -k 4 --gold --out c.jsonl`.")
    parser.add_argument("--model", default="smollm2-135m",
                        help="Hub id, directory, gemkit checkpoint, smollm2-135m (default) or random:<size>.")
    parser.add_argument("--prompts", required=True,
                        help="JSONL with 'prompt' (and optional 'id', 'answer'), or builtin:arithmetic[?n=..&seed=..].")
    parser.add_argument("--out", required=True, help="Output JSONL, one line per candidate.")
    parser.add_argument("-k", type=int, default=4, help="Candidates per prompt (default 4).")
    parser.add_argument("--temperature", type=float, default=0.9)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--scorer", default="entropy", help="Scorer plugin name (default entropy).")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="A scorer option, e.g. lam=0.4; repeatable.")
    parser.add_argument("--mapping", default="identity", help="Reward mapping plugin: identity, softmax, rank, ….")
    parser.add_argument("--mapping-set", action="append", metavar="KEY=VALUE", help="A mapping option; repeatable.")
    parser.add_argument("--scale-by-std", action="store_true", help="Divide advantages by the group std (official code).")
    parser.add_argument("--gold", action="store_true",
                        help="Scorer diagnostics: check each candidate against the prompt's 'answer', write "
                             "--diagnostics-out (JSON) and print AUROC, point-biserial r and best-of-k by score "
                             "vs random vs oracle with bootstrap CIs.")
    parser.add_argument("--check", default="last-number", choices=sorted(CHECKS),
                        help="How --gold decides a candidate is right (default last-number: the last number in "
                             "the candidate; final-answer: the number after the last 'Final Answer:').")
    parser.add_argument("--diagnostics-out", help="Where --gold writes its JSON (default: OUT with .diagnostics.json).")
    parser.add_argument("--limit", type=int, help="Score only the first N prompts.")
    parser.add_argument("--batch-size", type=int, default=4, help="Prompts per generate call (k candidates each).")
    parser.add_argument("--system", help="System prompt (default: the step-by-step 'Final Answer:' instruction).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--quiet", action="store_true", help="No progress bar.")
    parser.set_defaults(handler=run)


def read_prompts(source: str, limit: int | None) -> list[dict[str, Any]]:
    """``[{id, prompt, answer}]`` from a JSONL file or the built-in arithmetic set."""
    if source.startswith("builtin:"):
        from gemkit.data.readers import load_pairs

        rows = [{"id": p.id, "prompt": p.prompt, "answer": p.answer} for p in load_pairs(source)]
    else:
        path = Path(source)
        if not path.is_file():
            raise DataError(source, "file not found (expected JSONL with a 'prompt' field, or builtin:arithmetic)")
        rows = []
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(source, f"invalid JSON ({exc.msg})", line=line_no) from None
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), (str, list)) or not row["prompt"]:
                raise DataError(source, "expected an object with a non-empty 'prompt' (text or chat messages)",
                                line=line_no, field="prompt")
            answer = row.get("answer")
            rows.append({"id": str(row.get("id", f"prompt-{line_no:05d}")), "prompt": row["prompt"],
                         "answer": None if answer is None else str(answer)})
    if not rows:
        raise DataError(source, "no prompts")
    return rows[:limit] if limit else rows


def _load(model: str, device: str, dtype: str) -> Any:
    from gemkit.models import ModelSpec, load_model
    from gemkit.train.checkpoint import MODEL_META, load_trained

    if (Path(model) / MODEL_META).is_file():
        return load_trained(model, device=device, dtype=dtype)
    return load_model(ModelSpec(name=model, device=device, dtype=dtype))


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from gemkit.gem.advantages import AdvantageRule
    from gemkit.gem.group import score_groups
    from gemkit.generation import SamplingConfig
    from gemkit.io import atomic_write_text
    from gemkit.registry import registry

    # Everything that can be checked is checked before the model loads.
    if args.k < 1 or args.batch_size < 1:
        raise ConfigError(f"-k and --batch-size must be >= 1, got {args.k} and {args.batch_size}")
    scorer = registry("scorer").get(args.scorer).build(parse_key_values(args.set))
    mapping = registry("mapping").get(args.mapping).build(parse_key_values(args.mapping_set))
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p)
    rule = AdvantageRule(scale_by_std=args.scale_by_std)
    rows = read_prompts(args.prompts, args.limit)
    if args.gold and all(r["answer"] is None for r in rows):
        raise DataError(args.prompts, "--gold needs prompts with a gold 'answer'; none of them has one", field="answer")
    torch.manual_seed(args.seed)
    bundle = _load(args.model, args.device, args.dtype)
    lines, scores = [], []
    with tqdm(total=len(rows), desc="scoring", unit="prompt", disable=args.quiet) as bar:
        for first in range(0, len(rows), args.batch_size):
            chunk = rows[first:first + args.batch_size]
            with torch.no_grad():
                group = score_groups(bundle.model, bundle.tokenizer, [r["prompt"] for r in chunk], k=args.k,
                                     sampling=sampling, scorer=scorer, mapping=mapping, rule=rule, answers=[r["answer"] for r in chunk],
                                     system=args.system)
            lines += _candidate_lines(group, chunk)
            scores += group.result.scores.tolist()
            bar.update(len(chunk))
    if args.gold:
        check = CHECKS[args.check]
        answers = {r["id"]: r["answer"] for r in rows}
        for line in lines:
            gold = answers[line["prompt_id"]]
            line["correct"] = None if gold is None else bool(check(line["text"], gold))
    atomic_write_text(args.out, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    finished = sum(line["finished"] for line in lines)
    print(f"{len(lines)} candidates for {len(rows)} prompts -> {args.out}; mean score "
          f"{sum(scores) / len(scores):.4f}; {finished}/{len(lines)} with a Final Answer marker")
    if args.gold:
        _write_diagnostics(args, lines, rows)
    return 0


def _write_diagnostics(args: argparse.Namespace, lines: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    from gemkit.gem.diagnostics import diagnose_rows
    from gemkit.io import atomic_write_json

    checked = [line for line in lines if line["correct"] is not None]
    found = diagnose_rows(checked, seed=args.seed)
    path = Path(args.diagnostics_out or Path(args.out).with_suffix(".diagnostics.json"))
    atomic_write_json(path, {"model": args.model, "prompts": args.prompts, "scorer": args.scorer,
                             "scorer_options": parse_key_values(args.set), "check": args.check, "k": args.k,
                             "max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
                             "top_p": args.top_p, "seed": args.seed,
                             "prompts_without_answer": sum(r["answer"] is None for r in rows),
                             "metrics": found.metrics(), "diagnostics": found.to_dict()})
    print(f"scorer diagnostics ({args.scorer} vs {args.check} correctness):")
    print(found.table())
    print(f"written: {path}")


def _candidate_lines(group: Any, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
    k, out = group.group_size, []
    mask = group.inputs.response_mask
    for row in range(mask.shape[0]):
        n = int(mask[row].sum())
        start, end = group.result.final_span[row] if group.result.final_span else (n, n)
        line = {
            "prompt_id": chunk[row // k]["id"],
            "index": row % k,
            "text": group.generation.texts[row],
            "token_ids": group.inputs.token_ids[row, :n].tolist(),
            "entropies": [round(h, 6) for h in group.inputs.token_entropies[row, :n].tolist()],
            "final_span": [int(start), int(end)],
            "score": float(group.result.scores[row]),
            "reward": float(group.rewards[row // k, row % k]),
            "advantage": float(group.advantages[row // k, row % k]),
            "finished": bool(group.result.finished[row]),
            "eos": bool(group.generation.finished[row]),
        }
        for name, values in group.result.details.items():
            line[name] = float(values[row])
        out.append(line)
    return out
