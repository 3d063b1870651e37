"""What a generator returns: the sampled responses of a batch of prompts, HF and vLLM paths alike."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from gemkit.data.encoding import EncodedSequence


@dataclass
class Generation:
    """Generated responses, one row per sequence; rows of the same prompt are adjacent.

    ``response_ids`` stop before the end-of-turn token; ``finished[i]`` says whether it was
    produced (False: cut at ``max_new_tokens``). ``logits[n, t, V]`` are the raw, unprocessed
    logits of each generated position (present with ``output_logits=True``); row i's first
    ``len(response_ids[i])`` positions belong to its response.
    """

    prompt_index: list[int]
    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    texts: list[str]
    finished: list[bool]
    logits: torch.Tensor | None = None

    def sequences(self, *, with_eos: bool, eos_id: int) -> list[EncodedSequence]:
        """Prompt + response as encoded sequences (EOS appended to finished responses if asked)."""
        out = []
        for prompt, response, done in zip(self.prompt_ids, self.response_ids, self.finished, strict=True):
            tail = [eos_id] if (with_eos and done) else []
            out.append(EncodedSequence(prompt + response + tail, len(prompt)))
        return out
