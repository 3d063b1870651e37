"""Tokenisation in one place: chat template, prompt/response split, truncation, padded batches.

A sequence is ``prompt tokens + response tokens``; the prompt is the chat-templated messages with
the generation prompt, the response is the answer text followed by the end-of-turn token. Only
response positions carry a loss, a log-prob or an entropy; padding never does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from gemkit.data.records import Text, as_messages
from gemkit.errors import ConfigError

TruncationPolicy = Literal["left-prompt", "error"]


@dataclass
class EncodedSequence:
    """Token ids of one prompt + response, and where the response starts."""

    input_ids: list[int]
    response_start: int
    truncated: bool = False

    @property
    def response_length(self) -> int:
        return len(self.input_ids) - self.response_start


@dataclass
class SequenceBatch:
    """A padded batch. ``response_mask[b, t]`` is 1 where token t is a response token."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor

    def to(self, device: torch.device | str) -> SequenceBatch:
        return SequenceBatch(self.input_ids.to(device), self.attention_mask.to(device), self.response_mask.to(device))

    @property
    def position_ids(self) -> torch.Tensor:
        """Positions counted over real tokens only, so left padding does not shift them."""
        return (self.attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def render_prompt(tokenizer: Any, prompt: Text, system: str | None = None) -> str:
    """The chat-templated prompt text ending with the assistant's generation prompt."""
    messages = as_messages(prompt)
    if system and not any(m["role"] == "system" for m in messages):
        messages = [{"role": "system", "content": system}, *messages]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    # A tokenizer without a chat template (a plain base model): a minimal, documented fallback.
    body = "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)
    return body + "\n\nAssistant: "


def encode_prompt(tokenizer: Any, prompt: Text, system: str | None = None) -> list[int]:
    return tokenizer(render_prompt(tokenizer, prompt, system), add_special_tokens=False)["input_ids"]


def encode_response(tokenizer: Any, response: str, *, add_eos: bool = True) -> list[int]:
    ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    return ids + [tokenizer.eos_token_id] if add_eos else ids


def encode_sequence(
    tokenizer: Any,
    prompt: Text | list[int],
    response: str | list[int],
    *,
    max_length: int | None = None,
    truncation: TruncationPolicy = "left-prompt",
    system: str | None = None,
) -> EncodedSequence:
    """Encode prompt + response; over ``max_length`` the prompt loses tokens from its left.

    The response is never cut (a cut answer would change what is being scored); if the response
    alone does not fit, or ``truncation='error'``, a ConfigError says by how much.
    """
    prompt_ids = list(prompt) if isinstance(prompt, list) and (not prompt or isinstance(prompt[0], int)) \
        else encode_prompt(tokenizer, prompt, system)
    response_ids = list(response) if isinstance(response, list) else encode_response(tokenizer, response)
    truncated = False
    if max_length is not None and len(prompt_ids) + len(response_ids) > max_length:
        overflow = len(prompt_ids) + len(response_ids) - max_length
        if truncation == "error" or overflow >= len(prompt_ids):
            raise ConfigError(
                f"sequence of {len(prompt_ids) + len(response_ids)} tokens exceeds max_length={max_length} "
                f"(prompt {len(prompt_ids)}, response {len(response_ids)}); raise max_length or shorten the data"
            )
        prompt_ids = prompt_ids[overflow:]
        truncated = True
    return EncodedSequence(prompt_ids + response_ids, len(prompt_ids), truncated)


def collate(sequences: list[EncodedSequence], pad_id: int, *, side: Literal["left", "right"] = "right") -> SequenceBatch:
    """Pad to the longest sequence; the response mask marks response tokens only."""
    width = max(len(s.input_ids) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    response = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        n = len(seq.input_ids)
        start = width - n if side == "left" else 0
        ids[row, start:start + n] = torch.tensor(seq.input_ids, dtype=torch.long)
        attention[row, start:start + n] = 1
        response[row, start + seq.response_start:start + n] = 1
    return SequenceBatch(ids, attention, response)


def check_max_length(max_length: int) -> None:
    if max_length < 8:
        raise ConfigError(f"max_length must be at least 8 tokens, got {max_length}")
