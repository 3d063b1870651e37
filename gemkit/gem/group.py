"""One on-policy group step: sample k candidates per prompt, one forward pass, score, map, centre.

The forward pass that yields the log-probs for the update also yields the (detached) token
entropies the scorer reads, so scoring costs no extra pass (the official code runs a second,
eval-mode pass per candidate). All b·k candidates of the micro-batch go through one padded batch,
so memory grows with one micro-batch, not with the number of steps or prompts. The k candidates
of a prompt share its tokens, so the prompt runs once and its KV cache serves all k
(:func:`gemkit.logprobs.shared_prompt_logprobs`, exact); after a per-candidate truncation they
no longer share it and the plain padded forward runs instead.

Reused by every group objective (SEGA, GRPO, …): :func:`score_groups` returns a :class:`GroupBatch`
holding the encoded batch, the policy log-probs *with* grad, the scorer's inputs and result, and
the rewards and advantages ``[b, k]``; the objective only writes its loss.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from gemkit.data.encoding import SequenceBatch, collate
from gemkit.data.records import PreferencePair, Text
from gemkit.gem.advantages import AdvantageRule, advantages_from_scores
from gemkit.generation import Generation, SamplingConfig, generate
from gemkit.logprobs import ResponseLogprobs, response_logprobs, shared_prompt_logprobs, shares_prompts
from gemkit.scoring import ScoreResult, ScoringInputs

COT_SYSTEM_PROMPT = ("You are a careful assistant. Think step by step, then give the result on a last line "
                     "that starts with 'Final Answer:'.")


@dataclass
class GroupBatch:
    """Everything one group step produced. Per-candidate tensors are ``[b·k]`` (candidates of one
    prompt adjacent); ``rewards``, ``keep`` and ``advantages`` are ``[b, k]`` and detached."""

    generation: Generation
    batch: SequenceBatch  # prompt + response (+ EOS when finished), right-padded
    policy: ResponseLogprobs  # with grad: log π(a_i|q) for the update
    inputs: ScoringInputs
    result: ScoreResult
    rewards: torch.Tensor
    keep: torch.Tensor
    advantages: torch.Tensor
    group_size: int
    truncated: int = 0

    def grouped(self, values: torch.Tensor) -> torch.Tensor:
        """``[b·k] -> [b, k]``."""
        return values.view(-1, self.group_size)

    def correctness(self) -> torch.Tensor | None:
        """``[b, k]`` 1.0 where a candidate's ``Final Answer`` equals its prompt's gold answer, or None
        when some prompt has no gold answer. The check is the one the step-by-step system prompt asks
        for (:func:`gemkit.evaluation.answer_check.final_answer_correct`)."""
        from gemkit.evaluation.answer_check import final_answer_correct

        answers = self.inputs.answers
        if not answers or any(answer is None for answer in answers):
            return None
        correct = [float(final_answer_correct(text, answer))
                   for text, answer in zip(self.generation.texts, answers, strict=True)]
        return self.grouped(torch.tensor(correct))

    def metrics(self) -> dict[str, float]:
        """Detached summaries for the training log; with gold answers also the scorer diagnostics
        ``diag/*`` of :func:`gemkit.gem.diagnostics.group_diagnostics` (does the score track correctness?)."""
        scores, finished = self.result.scores.float(), self.result.finished.float()
        details = self.result.details
        kept = self.advantages[self.keep > 0]
        out = {
            "score_mean": float(scores.mean()),
            "score_std_in_group": float(self.grouped(scores).std(-1).mean()) if self.group_size > 1 else 0.0,
            "reward_mean": float(self.rewards.mean()),
            "advantage_std": float(kept.std()) if kept.numel() > 1 else 0.0,
            "response_length": float(self.inputs.response_mask.sum(-1).mean()),
            "frac_finished": float(finished.mean()),
            "frac_eos": float(torch.tensor(self.generation.finished, dtype=torch.float).mean()),
            "frac_kept": float(self.keep.mean()),
        }
        for name in ("h_final", "fork_entropy"):
            if name in details:
                out[f"{name}_mean"] = float(details[name].float().mean())
        correct = self.correctness()
        if correct is not None:
            from gemkit.gem.diagnostics import group_diagnostics

            out.update(group_diagnostics(self.grouped(scores.cpu()), correct))
        return out


@contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    """Dropout off for the group forward: the entropies are then the policy's own (equal to a plain
    forward), and the log-probs are those of the distribution the candidates were sampled from."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _response_view(values: torch.Tensor, scores: ResponseLogprobs, width: int) -> torch.Tensor:
    """Left-align each row's response positions (in order) into ``[n, width, ...]``."""
    out = values.new_zeros((values.shape[0], width, *values.shape[2:]))
    for row in range(values.shape[0]):
        positions = scores.mask[row].nonzero().squeeze(-1)[:width]
        out[row, :positions.numel()] = values[row, positions]
    return out


def score_groups(model: Any, tokenizer: Any, prompts: list[Text | PreferencePair], *, k: int,
                 sampling: SamplingConfig, scorer: Any, mapping: Any, rule: AdvantageRule | None = None,
                 answers: list[str | None] | None = None, system: str | None = None, max_length: int | None = None,
                 share_prompt: bool = True, candidates: Generation | None = None) -> GroupBatch:
    """Sample ``k`` candidates per prompt from ``model``, score, map and centre them (GEM
    Cognitive Filtering + Eq. 2's advantages).

    ``prompts`` are texts, chat message lists or PreferencePairs (whose ``answer`` then fills
    ``answers``). ``system`` defaults to :data:`COT_SYSTEM_PROMPT`. A sequence longer than
    ``max_length`` has its prompt cut from the left; their number is ``GroupBatch.truncated``.
    ``share_prompt=False`` forces the plain padded forward (one LM-head call over ``batch``'s
    response window), for objectives that read that call's hidden states (rm-ppo's value head).
    ``candidates`` (``k`` per prompt, from :func:`gemkit.generation.generate` on the same prompts and
    system prompt) are scored instead of sampling new ones, e.g. another policy's candidates scored by
    this ``model``.
    In training, :meth:`gemkit.train.StepContext.score_groups` fills in the step's model,
    tokenizer, length limit and system prompt.
    """
    texts = [p.prompt if isinstance(p, PreferencePair) else p for p in prompts]
    if answers is None:
        answers = [p.answer if isinstance(p, PreferencePair) else None for p in prompts]
    system = system or COT_SYSTEM_PROMPT
    generation = candidates
    if generation is None:
        # a training step's policy (gemkit.train.parallel.PolicyHandle) is gathered whole under ZeRO-3
        with getattr(model, "whole_weights", nullcontext)():
            generation = generate(model, tokenizer, texts, sampling=sampling, num_return_sequences=k, system=system)
    if len(generation.response_ids) != k * len(texts):
        raise ValueError(f"candidates hold {len(generation.response_ids)} responses; "
                         f"expected k = {k} for each of the {len(texts)} prompts")
    # The end-of-turn token is part of the action (the policy chose to stop), so finished
    # candidates keep it in the log-prob; the scorer sees response tokens only.
    sequences = generation.sequences(with_eos=True, eos_id=tokenizer.eos_token_id)
    truncated = 0
    if max_length is not None:
        for seq in sequences:
            # Cut the prompt from the left (never the sampled response, never the whole prompt).
            overflow = min(len(seq.input_ids) - max_length, seq.response_start - 1)
            if overflow > 0:
                del seq.input_ids[:overflow]
                seq.response_start -= overflow
                truncated += 1
    device = next(model.parameters()).device
    batch = collate(sequences, tokenizer.pad_token_id, side="right").to(device)
    needs_logits = bool(getattr(scorer, "needs_logits", False))
    with _eval_mode(model):
        if share_prompt and shares_prompts(sequences, k):
            policy = shared_prompt_logprobs(model, batch, sequences, k, with_entropy=True, keep_logits=needs_logits)
        else:
            policy = response_logprobs(model, batch, with_entropy=True, keep_logits=needs_logits)
    lengths = torch.tensor([len(r) for r in generation.response_ids], device=device)
    width = int(max(1, lengths.max().item()))
    response_mask = (torch.arange(width, device=device).unsqueeze(0) < lengths.unsqueeze(1)).float()
    inputs = ScoringInputs(
        token_ids=_response_view(policy.labels, policy, width) * response_mask.long(),
        response_mask=response_mask,
        token_entropies=_response_view(policy.token_entropies, policy, width) * response_mask,  # type: ignore[arg-type]
        token_logps=_response_view(policy.token_logps.detach(), policy, width) * response_mask,
        logits=_response_view(policy.logits, policy, width) if needs_logits else None,  # type: ignore[arg-type]
        texts=generation.texts,
        tokenizer=tokenizer,
        group_size=k,
        answers=[answers[i] for i in generation.prompt_index],
    )
    result = scorer.score(inputs)
    if tuple(result.scores.shape) != (len(sequences),) or not torch.isfinite(result.scores).all():
        raise ValueError(f"scorer '{getattr(scorer, 'name', scorer)}' must return {len(sequences)} finite scores, "
                         f"got shape {tuple(result.scores.shape)}")
    finished = result.finished.to(device).bool().view(-1, k)
    rewards, keep, advantages = advantages_from_scores(result.scores.to(device).view(-1, k), finished, mapping,
                                                       rule or AdvantageRule())
    return GroupBatch(generation, batch, policy, inputs, result, rewards, keep, advantages, k, truncated)
