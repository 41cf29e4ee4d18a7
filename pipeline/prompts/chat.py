"""The chat requests sent to an LLM: system prompt, few-shot turns and the clip's attributes.

Variety against mode collapse: per request the system prompt's rule blocks are
shuffled, the few-shot examples are drawn from the versioned examples file, and the
attributes come in random order. All of it is seeded from (seed, stage, clip id,
attempt), so a retry asks differently and a re-run asks the same.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import ConfigError
from pipeline.ids import item_rng, item_seed
from pipeline.prompts.attributes import Facts, attribute_lines
from pipeline.prompts.backend import ChatRequest
from pipeline.prompts.validate import check_prompt

INTRO = (
    "You write short text prompts for a text-to-audio model that was trained on music clips. "
    "From a clip's attributes, write the prompt a musician would type to get that clip."
)
RULES: tuple[str, ...] = (
    "Write one or two natural sentences, at most 50 words. Answer with the prompt only: "
    "no quotes, no preamble, no bullet points.",
    "Name every instrument listed. A common name is fine (an Electric Grand Piano may be 'electric piano', "
    "'piano' or 'keys'; a drum kit 'drums'; many instruments may be grouped by family: 'strings, brass and "
    "synths'), but never mention an instrument, voice or vocal that is not listed.",
    "State the key exactly as given, tonic and scale (e.g. 'F# minor'), and the tempo as '<number> BPM' "
    "with the number given. Mention no other key, scale or tempo. If there is no key, mention none; "
    "if there is no BPM, state no BPM or tempo number.",
    "Use no number that is not in the attributes. Bars and time signature may be stated, exactly as given; "
    "if there is no time signature, state no meter.",
    "You may describe timbre, genre, what the parts play and the effects listed, but add no fact that "
    "is not given: no genre or mood that is not listed under genre, no effects on a dry clip, no artist "
    "or song names, no lyrics.",
)


class Example(BaseModel):
    """A few-shot example: the attributes of a clip and a prompt written for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    input: Facts
    output: str = Field(min_length=1)


class ExampleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int
    examples: list[Example] = Field(min_length=1)


@dataclass(frozen=True)
class Examples:
    path: Path
    items: tuple[Example, ...]
    sha256: str  # part of the cache key: new examples, new prompts


def load_examples(path: Path) -> Examples:
    """Read and check the examples file; every example's output must pass the validator on its input."""
    try:
        raw = path.read_bytes()
        data = ExampleSet.model_validate(json.loads(raw))
    except FileNotFoundError:
        raise ConfigError(f"prompts.examples: {path} not found") from None
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"prompts.examples: {path} is not a valid examples file: {exc}") from None
    for n, ex in enumerate(data.examples):
        issues = check_prompt(ex.output, ex.input)
        if issues:
            raise ConfigError(f"prompts.examples: {path} example {n} fails validation: {'; '.join(issues)}")
    return Examples(path, tuple(data.examples), hashlib.sha256(raw).hexdigest())


def system_prompt(rng: np.random.Generator) -> str:
    rules = [RULES[i] for i in rng.permutation(len(RULES))]
    return INTRO + "\n\nRules:\n" + "\n".join(f"- {r}" for r in rules)


def user_message(facts: Facts, rng: np.random.Generator) -> str:
    return "Clip attributes:\n" + "\n".join(attribute_lines(facts, rng)) + "\n\nPrompt:"


def build_request(
    clip_id: str, facts: Facts, attempt: int, examples: Examples, few_shot: int, seed: int, stage: str
) -> ChatRequest:
    """The request for one clip's attempt (0 = first try)."""
    tag = f"{clip_id}#llm{attempt}"
    rng = item_rng(seed, stage, tag)
    messages: list[dict[str, str]] = [{"role": "system", "content": system_prompt(rng)}]
    k = min(few_shot, len(examples.items))
    for i in rng.choice(len(examples.items), size=k, replace=False) if k else []:
        ex = examples.items[int(i)]
        messages.append({"role": "user", "content": user_message(ex.input, rng)})
        messages.append({"role": "assistant", "content": ex.output})
    messages.append({"role": "user", "content": user_message(facts, rng)})
    return ChatRequest(id=tag, messages=tuple(messages), seed=item_seed(seed, stage, tag) & 0x7FFFFFFF)


def clean_generation(text: str) -> str:
    """The prompt inside an LLM answer: first non-empty line, without wrapping quotes or a 'Prompt:' label."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    out = lines[0] if lines else ""
    if out.lower().startswith("prompt:"):
        out = out[len("prompt:") :].strip()
    if len(out) >= 2 and out[0] == out[-1] and out[0] in "\"'`":
        out = out[1:-1].strip()
    return " ".join(out.split())
