"""The contract between the prompt writer and the LLMs that write natural-language prompts.

The writer builds `ChatRequest`s (system prompt, few-shot turns, user message);
a backend answers each with a `Generation` in the same order. A backend never
raises for one bad item: it returns that item's error, so the writer can retry
or fall back to a template prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ChatRequest:
    id: str  # the clip id plus the attempt, for logs and errors
    messages: tuple[dict[str, str], ...]  # OpenAI chat format: {"role": ..., "content": ...}
    seed: int  # sampling seed: same request, same seed -> same text (where the engine allows)


@dataclass(frozen=True)
class Generation:
    text: str | None
    error: str | None = None


class LLMBackend(Protocol):
    name: str  # "vllm" | "openai"
    model: str  # what the prompt cache keys on

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        """One generation per request, in request order."""
        ...

    def close(self) -> None: ...
