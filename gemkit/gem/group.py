"""One on-policy group step: sample k candidates per prompt, one forward pass, score, map, centre.

The forward pass that yields the log-probs for the update also yields the (detached) token
entropies the scorer reads, so scoring costs no extra pass (the official code runs a second,
eval-mode pass per candidate). All b·k candidates of the micro-batch go through one padded batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gemkit.data.encoding import collate
from gemkit.data.records import PreferencePair
from gemkit.generation import Generation, SamplingConfig, generate
from gemkit.logprobs import ResponseScores, response_logprobs
from gemkit.scoring import ScoreResult, ScoringInputs

COT_SYSTEM_PROMPT = ("You are a careful assistant. Think step by step, then give the result on a last line "
                     "that starts with 'Final Answer:'.")


@dataclass
class GroupBatch:
    """Everything one group step produced; tensors are ``[b·k]`` unless noted."""

    generation: Generation
    policy: ResponseScores  # with grad: log π(a_i|q) for the update
    inputs: ScoringInputs
    result: ScoreResult
    group_size: int

    def grouped(self, values: torch.Tensor) -> torch.Tensor:
        return values.view(-1, self.group_size)


def _response_view(values: torch.Tensor, scores: ResponseScores, width: int) -> torch.Tensor:
    """Left-align each row's response positions (in order) into ``[n, width, ...]``."""
    out = values.new_zeros((values.shape[0], width, *values.shape[2:]))
    for row in range(values.shape[0]):
        positions = scores.mask[row].nonzero().squeeze(-1)[:width]
        out[row, :positions.numel()] = values[row, positions]
    return out


def sample_and_score(model: Any, tokenizer: Any, batch: list[PreferencePair], *, k: int, sampling: SamplingConfig,
                     scorer: Any, max_length: int | None = None, system: str | None = COT_SYSTEM_PROMPT
                     ) -> GroupBatch:
    """Generate ``k`` candidates per prompt from the current policy and score them (GEM Cognitive Filtering)."""
    prompts = [pair.prompt for pair in batch]
    generation = generate(model, tokenizer, prompts, sampling=sampling, num_return_sequences=k, system=system)
    # The end-of-turn token is part of the action (the policy chose to stop), so finished
    # candidates keep it in the log-prob; the scorer sees response tokens only.
    sequences = generation.sequences(with_eos=True, eos_id=tokenizer.eos_token_id)
    if max_length is not None:
        for seq in sequences:
            overflow = len(seq.input_ids) - max_length
            if overflow > 0:
                del seq.input_ids[:overflow]
                seq.response_start -= overflow
    device = next(model.parameters()).device
    padded = collate(sequences, tokenizer.pad_token_id, side="right").to(device)
    needs_logits = bool(getattr(scorer, "needs_logits", False))
    policy = response_logprobs(model, padded, with_entropy=True, keep_logits=needs_logits)
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
        answers=[batch[i].answer for i in generation.prompt_index],
    )
    result = scorer.score(inputs)
    if result.scores.shape != (len(sequences),) or not torch.isfinite(result.scores).all():
        raise ValueError(f"scorer '{getattr(scorer, 'name', scorer)}' must return {len(sequences)} finite scores, "
                         f"got shape {tuple(result.scores.shape)}")
    return GroupBatch(generation, policy, inputs, result, k)
