"""An optional generative satisfaction judge: a chat model behind an OpenAI-compatible HTTP endpoint (e.g. a
vLLM or llama.cpp server a user runs: ``POST {base_url}/chat/completions``) reads a user's rated history and an
item and answers a 1-5 rating.

The prompt is fixed and versioned (``PROMPT_VERSION``; change the version whenever the wording changes, since
scores from two wordings are not comparable). Decoding is greedy (temperature 0) with a short answer; the
rating is the first integer 1-5 in the reply; a reply without one raises ``JudgeReplyError`` (never a silent
default). Only the standard library is used (urllib); no network is touched unless ``rate`` is called.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from recux.errors import ConfigError

PROMPT_VERSION = "recux-judge-prompt/1"
SYSTEM = ("You are a movie-rating predictor. Given the ratings (1-5) a user gave to items, predict the rating "
          "the same user would give to a new item. Answer with a single integer from 1 to 5 and nothing else.")
USER = "Ratings by this user:\n{history}\n\nNew item: {item}\nPredicted rating (1-5):"
_RATING = re.compile(r"(?<!\d)(?<!\d\.)([1-5])(?!\d|\.\d)")  # a lone digit, not part of 4.5 or 10


class JudgeReplyError(RuntimeError):
    """The endpoint answered without a parsable 1-5 rating."""


def messages(history: Sequence[tuple[str, float]], item: str, max_history: int = 50) -> list[dict[str, str]]:
    """The chat messages for ``history`` ((item text, rating) pairs, most relevant LAST: the last
    ``max_history`` are kept) and the target ``item`` text."""
    kept = list(history)[-int(max_history):] if max_history else []
    lines = "\n".join(f"- {text}: {rating:g}" for text, rating in kept) or "- (none)"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER.format(history=lines, item=item)}]


def parse_rating(reply: str) -> int:
    match = _RATING.search(reply or "")
    if match is None:
        raise JudgeReplyError(f"the judge's reply holds no rating 1-5: {reply!r}")
    return int(match.group(1))


class GenerativeJudge:
    """Ratings from a chat model at ``base_url`` (e.g. http://localhost:8000/v1) named ``model``."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 60.0,
                 max_history: int = 50, max_tokens: int = 4) -> None:
        if not str(base_url).startswith(("http://", "https://")) or not model:
            raise ConfigError(f"generative judge: base_url must be an http(s) URL and model a name; got "
                              f"{base_url!r}, {model!r} (e.g. base_url=http://localhost:8000/v1 for a vLLM server)")
        self.base_url, self.model, self.api_key = str(base_url).rstrip("/"), str(model), api_key
        self.timeout, self.max_history, self.max_tokens = float(timeout), int(max_history), int(max_tokens)

    def describe(self) -> dict[str, Any]:
        return {"prompt_version": PROMPT_VERSION, "model": self.model, "base_url": self.base_url,
                "max_history": self.max_history, "temperature": 0.0, "max_tokens": self.max_tokens}

    def rate(self, history: Sequence[tuple[str, float]], item: str) -> int:
        body = {"model": self.model, "messages": messages(history, item, self.max_history), "temperature": 0.0,
                "max_tokens": self.max_tokens}
        reply = self._post(body)
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise JudgeReplyError(f"not a chat-completions reply: {str(reply)[:200]}") from None
        return parse_rating(content)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(f"{self.base_url}/chat/completions", json.dumps(body).encode("utf-8"),
                                     headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.URLError as exc:
            raise ConfigError(f"generative judge: no answer from {self.base_url}/chat/completions ({exc}); start "
                              "the server or fix base_url") from exc
