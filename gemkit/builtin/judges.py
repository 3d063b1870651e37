"""Built-in pairwise judges (kind ``judge``): a local Hugging Face model and an OpenAI-compatible API.

Both show the judge our prompt (:mod:`gemkit.evaluation.judges`) and return "A", "B" or "tie".

- ``local`` (offline): the verdict whose reply ``[[A]]``, ``[[B]]`` or ``[[C]]`` has the highest
  log-likelihood under the judge model given the prompt — always a valid verdict, deterministic,
  one forward pass per comparison.
- ``openai``: POST ``{endpoint}/chat/completions`` (temperature 0) to any OpenAI-compatible server.
  The API key is read from the environment variable named by ``key_env`` at request time and is
  sent only in the Authorization header: it is never stored in the config, a cache file, a result
  or a log. Replies are cached on disk by request hash; failures are retried with exponential
  backoff; an unparsable reply counts as a tie.
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import torch

import gemkit
from gemkit.errors import ConfigError, GemkitError
from gemkit.evaluation.judges import ResponseCache, Verdict, judge_messages, parse_verdict

VERDICT_REPLIES: dict[str, Verdict] = {"[[A]]": "A", "[[B]]": "B", "[[C]]": "tie"}


@dataclass
class LocalJudgeConfig:
    model: str = field(default="smollm2-135m", metadata={"help": "Judge model: hub id, local dir or smollm2-135m."})
    device: str = field(default="auto", metadata={"help": "Device of the judge model."})
    max_length: int = field(default=2048, metadata={"help": "Longer judge prompts are cut from the left."})


class LocalJudge:
    """Verdict by likelihood under a local causal LM."""

    name = "local"
    description = "Local HF model judge (offline): the most likely of [[A]]/[[B]]/[[C]] after our judge prompt."
    Config = LocalJudgeConfig

    def __init__(self, config: LocalJudgeConfig | None = None, bundle: Any = None):
        self.config = config or LocalJudgeConfig()
        self._bundle = bundle

    @property
    def bundle(self) -> Any:
        if self._bundle is None:
            from gemkit.models import ModelSpec, load_model

            self._bundle = load_model(ModelSpec(name=self.config.model, device=self.config.device), role="judge")
        return self._bundle

    @torch.no_grad()
    def compare(self, question: str, answer_a: str, answer_b: str) -> Verdict:
        from gemkit.data.encoding import collate, encode_sequence
        from gemkit.logprobs import response_logprobs

        bundle = self.bundle
        messages = judge_messages(question, answer_a, answer_b)
        sequences = [encode_sequence(bundle.tokenizer, messages, reply, max_length=self.config.max_length)
                     for reply in VERDICT_REPLIES]
        batch = collate(sequences, bundle.tokenizer.pad_token_id).to(bundle.device)
        bundle.model.eval()
        scores = response_logprobs(bundle.model, batch).sum().tolist()
        return list(VERDICT_REPLIES.values())[max(range(3), key=lambda i: scores[i])]


@dataclass
class HttpJudgeConfig:
    endpoint: str = field(default="http://127.0.0.1:8000/v1", metadata={
        "help": "Base URL of an OpenAI-compatible API (…/v1); /chat/completions is appended."})
    model: str = field(default="gpt-4o-mini", metadata={"help": "Judge model name sent to the endpoint."})
    key_env: str = field(default="OPENAI_API_KEY", metadata={
        "help": "Name of the environment variable holding the API key (the key itself is never a setting)."})
    cache_dir: str | None = field(default=None, metadata={"help": "Directory caching replies by request hash."})
    max_retries: int = field(default=4, metadata={"help": "Retries after a failed request (429, 5xx, network)."})
    backoff_s: float = field(default=1.0, metadata={"help": "First retry delay; doubles each retry."})
    timeout_s: float = field(default=60.0, metadata={"help": "Per-request timeout."})
    max_tokens: int = field(default=512, metadata={"help": "Reply length budget."})

    def __post_init__(self) -> None:
        if not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"endpoint must be an http(s) URL, got {self.endpoint!r}")
        if self.max_retries < 0 or self.backoff_s < 0:
            raise ConfigError(f"max_retries and backoff_s must be >= 0, got {self.max_retries}, {self.backoff_s}")


class JudgeRequestError(GemkitError):
    """The judge endpoint failed after all retries."""


class HttpJudge:
    """Verdict from an OpenAI-compatible chat-completions endpoint (urllib; no extra dependency)."""

    name = "openai"
    description = "OpenAI-compatible HTTP judge: endpoint/model by flag, key from an env var, cached replies, retries."
    Config = HttpJudgeConfig

    def __init__(self, config: HttpJudgeConfig | None = None):
        self.config = config or HttpJudgeConfig()
        self.cache = ResponseCache(self.config.cache_dir)
        self.requests_sent = 0

    def compare(self, question: str, answer_a: str, answer_b: str) -> Verdict:
        return parse_verdict(self.complete(judge_messages(question, answer_a, answer_b))) or "tie"

    def complete(self, messages: list[dict[str, str]]) -> str:
        body = {"model": self.config.model, "messages": messages, "temperature": 0.0,
                "max_tokens": self.config.max_tokens}
        request_key = {"endpoint": self.config.endpoint, **body}
        cached = self.cache.get(request_key)
        if cached is not None:
            return cached
        reply = self._post(body)
        self.cache.put(request_key, reply)
        return reply

    def _post(self, body: dict[str, Any]) -> str:
        key = os.environ.get(self.config.key_env)
        if not key:
            raise ConfigError(f"the openai judge needs an API key in the environment variable {self.config.key_env} "
                              f"(set it, or choose another with key_env=NAME)")
        url = self.config.endpoint.rstrip("/") + "/chat/completions"
        data = json.dumps(body).encode("utf-8")
        delay, last_error = self.config.backoff_s, "no attempt"
        for attempt in range(self.config.max_retries + 1):
            request = urllib.request.Request(url, data=data, method="POST", headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {key}"})
            self.requests_sent += 1
            try:
                with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                    payload = json.loads(response.read().decode("utf-8"))
                return str(payload["choices"][0]["message"]["content"])
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
                if exc.code not in (408, 409, 429) and exc.code < 500:
                    break  # a client error will not change on retry
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last_error = type(exc).__name__ + (f": {exc.reason}" if isinstance(exc, urllib.error.URLError) else "")
            except (KeyError, IndexError, TypeError, json.JSONDecodeError):
                last_error = "malformed reply (no choices[0].message.content)"
            if attempt < self.config.max_retries:
                time.sleep(delay)
                delay *= 2
        raise JudgeRequestError(f"judge endpoint {url} failed after {self.config.max_retries + 1} attempt(s): {last_error}")


@gemkit.hookimpl
def register_judges(register):
    register(LocalJudge)
    register(HttpJudge, aliases=("http",))
