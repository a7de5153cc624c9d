"""Any OpenAI-compatible chat server (vLLM, SGLang, TGI, llama.cpp, `limo.serve`, hosted APIs).

Standard library only (``urllib``): no client package to pin. Requests run on a thread pool bounded by
``concurrency``; a failed call (connection refused, time-out, HTTP 429 or 5xx) is retried with exponential
backoff, and after ``max_retries`` the backend raises `BackendUnavailableError` with one line naming the
server. Other HTTP errors (400, 401, 404) are not retried. Each request sends its row seed; servers that
honour ``seed`` (vLLM, limo.serve) then reproduce responses, and the report says which server was used.
The API key is read from the environment variable named in the config, never from the config itself.

A reply with empty ``content`` but completion tokens spent is not an answer the model gave: a server-side
parser dropped or moved the text (``transformers serve`` parses replies with a per-model-family response
template, and with the tiny test model returns ``""`` for every reply; reasoning parsers move thinking to
``reasoning_content``). Such a generation gets ``finish_reason="error"`` (counted as the server-error rate
in the evaluation summary, not silently as "no answer"), its meta records the server's finish reason and
the reasoning length, and the backend warns once, with the first request id. Tested servers:
``limo.serve`` and ``transformers serve`` (tests/test_backends.py); docs/evaluation.md has the commands.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from eval.backends.base import FinishReason, Generation, GenerationRequest

log = logging.getLogger(__name__)
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class BackendUnavailableError(RuntimeError):
    """The server could not be reached or kept failing after every retry."""


class OpenAIBackend:
    """Chat completions over HTTP.

    Args:
        base_url: Server root including ``/v1`` (e.g. ``http://127.0.0.1:8000/v1``).
        model: Model name the server expects.
        api_key_env: Name of the environment variable holding the API key (None: no key).
        concurrency: Requests in flight at once.
        max_retries: Retries per request after the first try.
        timeout_s: Per-request time-out.
        backoff_s: First retry delay; doubles each retry (capped at 30 s).
        extra_body: Fields added to every request body (a server's own options, e.g. llama.cpp's
            ``cache_prompt``); the standard fields above win over them.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        concurrency: int = 4,
        max_retries: int = 3,
        timeout_s: float = 600.0,
        backoff_s: float = 0.5,
        extra_body: dict[str, Any] | None = None,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = _api_key(api_key_env)
        self.concurrency = max(1, int(concurrency))
        self.max_retries = max(0, int(max_retries))
        self.timeout_s = float(timeout_s)
        self.backoff_s = float(backoff_s)
        self.extra_body = dict(extra_body or {})
        self.empty_replies = 0
        self._lock = threading.Lock()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            generations = list(pool.map(self._one, requests))
        for generation in generations:
            if generation.meta.get("empty_content"):
                self._note_empty(generation)
        return generations

    def _note_empty(self, generation: Generation) -> None:
        with self._lock:
            self.empty_replies += 1
            first = self.empty_replies == 1
        if first:
            log.warning(
                "%s returned empty content after %d completion tokens (request %s, server finish_reason %s, "
                "%d characters of reasoning_content): the server's reply parser dropped or moved the text; such "
                "samples are recorded with finish_reason 'error', not as answers (warned once)",
                self.url,
                generation.num_tokens,
                generation.request_id,
                generation.meta.get("server_finish_reason"),
                generation.meta.get("reasoning_chars", 0),
            )

    def _one(self, request: GenerationRequest) -> Generation:
        body = {
            **self.extra_body,
            "model": self.model,
            "messages": list(request.messages),
            "temperature": request.sampling.temperature,
            "top_p": request.sampling.top_p,
            "max_tokens": request.sampling.max_new_tokens,
            "seed": request.seed,
            "n": 1,
        }
        if request.sampling.stop:
            body["stop"] = list(request.sampling.stop)
        reply = self._post(body)
        return _generation(request, reply, self.url)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(min(30.0, self.backoff_s * 2 ** (attempt - 1)))
            try:
                request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                detail = err.read().decode("utf-8", "replace")[:200]
                if err.code not in RETRYABLE_STATUS:
                    raise BackendUnavailableError(f"{self.url}: HTTP {err.code}: {detail}") from None
                last = f"HTTP {err.code}: {detail}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as err:
                last = str(getattr(err, "reason", err))
            log.warning("%s: try %d/%d failed: %s", self.url, attempt + 1, self.max_retries + 1, last)
        raise BackendUnavailableError(f"{self.url}: server unavailable after {self.max_retries + 1} tries ({last})")


def _api_key(env_name: str | None) -> str | None:
    if not env_name:
        return None
    key = os.environ.get(env_name)
    if not key:
        raise BackendUnavailableError(f"API key variable {env_name} is not set in the environment")
    return key


def _generation(request: GenerationRequest, reply: dict[str, Any], url: str) -> Generation:
    try:
        choice = reply["choices"][0]
        message = choice["message"]
        text = message["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise BackendUnavailableError(f"{url}: malformed reply for {request.id}: {str(reply)[:200]}") from None
    finish: FinishReason = "length" if choice.get("finish_reason") == "length" else "stop"
    tokens = int((reply.get("usage") or {}).get("completion_tokens") or len(text.split()))
    meta: dict[str, Any] = {"seed": request.seed}
    if not text.strip() and tokens > 0:
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        meta.update(
            empty_content=True, server_finish_reason=choice.get("finish_reason"), reasoning_chars=len(reasoning)
        )
        finish = "error"
    return Generation(request.id, text, finish, tokens, meta)
