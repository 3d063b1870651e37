"""Anthropic HH-RLHF transcripts (``"\\n\\nHuman: …\\n\\nAssistant: …"``) as chat messages.

Shared by the ``hh-rlhf`` adapter (two full transcripts per row) and ``pairs`` (a transcript given
as a plain-string prompt), so the same text becomes the same prompt in both.
"""
from __future__ import annotations

import os
import re

from gemkit.data.records import Message

HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"
_TURN = re.compile(r"\n\n(Human|Assistant):")


def is_transcript(text: str) -> bool:
    """Whether a string is an HH transcript: it opens with a Human turn (leading newlines optional)."""
    return ("\n\n" + text.lstrip("\n")).startswith(HUMAN)


def transcript_messages(prefix: str) -> list[Message]:
    """``"\\n\\nHuman: a\\n\\nAssistant: b\\n\\nHuman: c"`` -> user/assistant/user messages; a trailing
    empty ``\\n\\nAssistant:`` (the cue some copies end their prompt with) is dropped."""
    prefix = ("\n\n" + prefix.lstrip("\n")).rstrip()
    if prefix.endswith(ASSISTANT):
        prefix = prefix[:-len(ASSISTANT)]
    parts = _TURN.split(prefix)
    messages = []
    for role, content in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": "user" if role == "Human" else "assistant", "content": content.strip()})
    if not messages or messages[-1]["role"] != "user":
        raise ValueError("the prompt must end with a Human turn")
    return messages


def split_pair(chosen: str, rejected: str) -> tuple[str, str, str] | None:
    """(prompt transcript, chosen response, rejected response) of two HH transcripts.

    The prompt is the two transcripts' common text up to its last ``\\n\\nAssistant:``, so a response
    may itself contain ``\\n\\nAssistant:`` (it is not mistaken for a new turn). None when the
    transcripts diverge before the last assistant turn (a remainder holds a further Human turn) or
    share no Assistant turn.
    """
    common = os.path.commonprefix([chosen, rejected])
    cut = common.rfind(ASSISTANT)
    if cut < 0:
        return None
    chosen_rest, rejected_rest = chosen[cut + len(ASSISTANT):], rejected[cut + len(ASSISTANT):]
    if HUMAN in chosen_rest or HUMAN in rejected_rest:
        return None
    return chosen[:cut], chosen_rest.strip(), rejected_rest.strip()

