"""The `openai` prompt backend: any OpenAI-compatible chat server (`vllm serve`, a hosted API).

Runs in the data environment (only the `openai` client is needed), keeps
`prompts.openai.concurrency` requests in flight with threads (the server does
the batching), and turns every per-request failure (HTTP error, timeout,
connection refused, empty answer) into that request's `Generation.error`, so
the writer can retry or fall back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai

from pipeline.params import PromptsParams
from pipeline.prompts.backend import ChatRequest, Generation

# vllm serve accepts any key; the client refuses to start without one.
DUMMY_KEY = "EMPTY"


class OpenAIBackend:
    """LLMBackend over the OpenAI chat-completions API."""

    name = "openai"

    def __init__(
        self, params: PromptsParams, *, extra_body: dict[str, Any] | None = None, max_retries: int = 1
    ) -> None:
        """`extra_body` goes with every request (server-specific fields, e.g. vLLM's
        `{"structured_outputs": {"regex": ...}}`); `max_retries` is the client's own
        retry of connection errors, 429 and 5xx, on top of the writer's retries."""
        o = params.openai
        self.params = params
        self.model = o.model
        self._sampling = params.sampling
        self._extra_body = extra_body
        self._client = openai.OpenAI(
            base_url=o.base_url,
            api_key=os.environ.get(o.api_key_env) or DUMMY_KEY,
            timeout=o.timeout_s,
            max_retries=max_retries,
        )
        self._pool = ThreadPoolExecutor(max_workers=o.concurrency, thread_name_prefix="openai-backend")

    def _one(self, request: ChatRequest) -> Generation:
        s = self._sampling
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=list(request.messages),  # type: ignore[arg-type]
                temperature=s.temperature,
                top_p=s.top_p,
                max_tokens=s.max_tokens,
                seed=request.seed,
                extra_body=self._extra_body,
            )
        except openai.APIStatusError as exc:
            return Generation(None, f"HTTP {exc.status_code} from {self.params.openai.base_url}: {_message(exc)}")
        except openai.APITimeoutError:
            return Generation(None, f"timed out after {self.params.openai.timeout_s} s ({self.params.openai.base_url})")
        except openai.APIConnectionError as exc:
            return Generation(None, f"cannot reach {self.params.openai.base_url}: {exc}")
        except openai.OpenAIError as exc:  # anything else the client raises for one request
            return Generation(None, f"{type(exc).__name__}: {exc}")
        if not response.choices or response.choices[0].message.content is None:
            return Generation(None, "the server returned no text")
        return Generation(response.choices[0].message.content)

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        """One Generation per request, in order; at most `concurrency` in flight."""
        return list(self._pool.map(self._one, requests))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _message(exc: openai.APIStatusError) -> str:
    """The server's error message (OpenAI and vLLM put it in body.message or body.error.message)."""
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:500]
    return str(exc)[:500]
