"""The preference-pair record and the conversion of chat-style fields to (prompt, response)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]
Text = str | list[Message]


@dataclass
class PreferencePair:
    """One human preference: ``chosen`` is preferred over ``rejected`` as an answer to ``prompt``.

    ``prompt`` is a string or a chat message list (``[{"role": "user", "content": ...}, ...]``);
    ``chosen``/``rejected`` are the assistant's answer as a string (a message list whose last
    message is the assistant's answer is normalised to that string by :func:`normalise_pair`).
    ``answer`` holds a verifiable gold answer when the data has one (the built-in arithmetic set).
    ``line`` is the 1-based line (row) of the file it came from, for error messages; it takes no
    part in equality.
    """

    prompt: Text
    chosen: str
    rejected: str
    id: str = ""
    answer: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    line: int | None = field(default=None, compare=False, repr=False)

    def prompt_messages(self) -> list[Message]:
        return as_messages(self.prompt)

    def prompt_text(self) -> str:
        """Plain text of the prompt (all message contents), for overlap checks and logs."""
        return "\n".join(m["content"] for m in self.prompt_messages())


def as_messages(prompt: Text) -> list[Message]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(m) for m in prompt]


def split_conversation(prompt: Text | None, response: Text) -> tuple[Text, str]:
    """Split a response given as a full conversation into (prompt messages, last assistant text).

    UltraFeedback and HH-style data store ``chosen`` as the whole conversation; the shared prefix
    is the prompt and the final assistant message is the response. A plain-string response is
    returned as is with ``prompt`` unchanged.
    """
    if isinstance(response, str):
        return (prompt if prompt is not None else ""), response
    if not response or response[-1].get("role") != "assistant":
        raise ValueError("a message-list response must end with an assistant message")
    history = list(response[:-1])
    if prompt is None or (isinstance(prompt, str) and history):
        return history, response[-1]["content"]
    return prompt, response[-1]["content"]
