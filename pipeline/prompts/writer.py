"""Write one validated prompt per clip: the library API the prompts and augment stages call.

Per clip: its facts, a style drawn from params.prompts.styles (seeded per clip), then
either a template prompt (`tags`, `subset`, and `natural` with the template backend)
or an LLM request. LLM requests of the whole batch go out in one `backend.generate`
call per attempt round; a generation that fails validation is asked again (new
seed, reshuffled request) up to params.prompts.retries times, then replaced by the
template prompt of the same style (`fallback`). Template prompts must pass the
validator: one that does not is a bug, reported as that clip's Failure.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.ids import item_rng
from pipeline.params import PromptsParams
from pipeline.prompts.attributes import Facts, clip_facts
from pipeline.prompts.backend import LLMBackend
from pipeline.prompts.cache import PromptCache, cache_key
from pipeline.prompts.chat import Examples, build_request, clean_generation, load_examples
from pipeline.prompts.template import template_prompt
from pipeline.prompts.validate import check_prompt
from pipeline.records import Clip, Failure, Prompt, PromptStyle

log = logging.getLogger(__name__)

STYLES: tuple[PromptStyle, ...] = ("natural", "tags", "subset")


class TemplateError(AssertionError):
    """A template prompt failed validation: a bug in template.py or vocab.py, never the clip's fault."""


@dataclass
class PromptStats:
    """Counts for the stage summary. All but cache_hits follow from the prompts, so they are the same
    whether the prompts came from the cache or not."""

    valid_first_try: int = 0  # the first text (template or LLM) passed validation
    llm_written: int = 0  # kept text written by the LLM
    retries: int = 0  # LLM attempts after the first
    fallbacks: int = 0  # every LLM attempt failed; a template prompt replaced them
    styles: dict[str, int] = field(default_factory=dict)
    cache_hits: int = 0
    llm_requests: int = 0  # requests sent in this run (0 on a fully cached run)

    def as_dict(self) -> dict[str, object]:
        return {
            "valid_first_try": self.valid_first_try,
            "llm_written": self.llm_written,
            "retries": self.retries,
            "fallbacks": self.fallbacks,
            "styles": self.styles,
            "cache_hits": self.cache_hits,
            "llm_requests": self.llm_requests,
        }


@dataclass
class PromptBatch:
    prompts: list[Prompt]  # in the order of the clips given (failed clips left out)
    failures: list[Failure]
    stats: PromptStats


def choose_style(weights: dict[str, float], rng: np.random.Generator) -> PromptStyle:
    """One style per clip from the (normalised) mixture."""
    p = np.array([weights[s] for s in STYLES], dtype=float)
    return STYLES[int(rng.choice(len(STYLES), p=p / p.sum()))]


@dataclass
class _Pending:
    clip_id: str
    facts: Facts
    style: PromptStyle
    key: str
    rejected: list[str] = field(default_factory=list)


class PromptWriter:
    def __init__(
        self, params: PromptsParams, seed: int, root: Path, backend: LLMBackend | None, stage: str = "prompts"
    ):
        if (backend is None) != (params.backend == "template"):
            raise ValueError(f"prompts.backend {params.backend!r} needs {'a' if backend is None else 'no'} backend")
        self.params, self.seed, self.root, self.backend, self.stage = params, seed, Path(root), backend, stage
        cache_dir = Path(params.cache_dir)
        self.cache = PromptCache(cache_dir if cache_dir.is_absolute() else self.root / cache_dir)
        self.examples: Examples | None = load_examples(self._examples_path()) if backend is not None else None
        self._weights = params.styles.model_dump()

    def _examples_path(self) -> Path:
        """params.prompts.examples, under the project root, else beside the repository's pipeline package."""
        path = Path(self.params.examples)
        if path.is_absolute() or (self.root / path).exists():
            return path if path.is_absolute() else self.root / path
        return Path(__file__).resolve().parents[2] / path

    def _text_params(self) -> dict[str, object]:
        """The params (and engine) the text depends on; throughput knobs (batch size, concurrency) are left out."""
        out: dict[str, object] = {"styles": self._weights, "backend": self.params.backend}
        if self.backend is not None and self.examples is not None:
            out |= {
                "model": self.backend.model,
                "engine": self.backend.name,
                "retries": self.params.retries,
                "few_shot": self.params.few_shot,
                "sampling": self.params.sampling.model_dump(),
                "examples": self.examples.sha256,
            }
            if self.params.backend == "vllm":
                out["dtype"] = self.params.vllm.dtype
        return out

    def _template(self, clip_id: str, style: PromptStyle, facts: Facts) -> str:
        text = template_prompt(style, facts, item_rng(self.seed, self.stage, f"{clip_id}#template:{style}"))
        issues = check_prompt(text, facts)
        if issues:
            raise TemplateError(f"{clip_id}: template {style} prompt {text!r} fails validation: {'; '.join(issues)}")
        return text

    def _template_record(self, clip_id: str, style: PromptStyle, facts: Facts) -> Prompt:
        return Prompt(
            id=clip_id,
            prompt=self._template(clip_id, style, facts),
            style=style,
            backend="template",
            requested_backend=self.params.backend,
            model=None,
            attempts=0,
            fallback=False,
        )

    def write(self, clips: Sequence[Clip]) -> PromptBatch:
        """One prompt per clip; a clip whose prompt cannot be made becomes a Failure, never an exception."""
        done: dict[str, Prompt] = {}
        failures: list[Failure] = []
        pending: list[_Pending] = []
        stats = PromptStats()
        params = self._text_params()
        for clip in clips:
            try:
                facts = clip_facts(clip)
                style = choose_style(self._weights, item_rng(self.seed, self.stage, f"{clip.id}#style"))
                material = {"id": clip.id, "facts": facts.model_dump(mode="json"), "style": style}
                key = cache_key({**material, "seed": self.seed, "stage": self.stage, "params": params})
                cached = self.cache.get(key, clip.id)
                if cached is not None:
                    done[clip.id] = cached
                    stats.cache_hits += 1
                elif style == "natural" and self.backend is not None:
                    pending.append(_Pending(clip.id, facts, style, key))
                else:
                    done[clip.id] = self._template_record(clip.id, style, facts)
                    self.cache.put(key, done[clip.id])
            except Exception as exc:  # noqa: BLE001 - one clip's problem (or a template bug) never stops the stage
                failures.append(Failure(id=clip.id, stage=self.stage, reason=f"{type(exc).__name__}: {exc}"))
        if pending:
            llm_done, llm_failures, stats.llm_requests = self._ask(pending)
            done.update(llm_done)
            failures += llm_failures
        prompts = [done[c.id] for c in clips if c.id in done]
        stats.valid_first_try = sum(p.attempts <= 1 and not p.fallback for p in prompts)
        stats.llm_written = sum(p.backend != "template" for p in prompts)
        stats.retries = sum(max(p.attempts - 1, 0) for p in prompts)
        stats.fallbacks = sum(p.fallback for p in prompts)
        stats.styles = {s: n for s, n in sorted(Counter(p.style for p in prompts).items())}
        return PromptBatch(prompts, failures, stats)

    def _ask(self, pending: list[_Pending]) -> tuple[dict[str, Prompt], list[Failure], int]:
        """Attempt rounds: all open clips in one generate call per round; then template fallbacks."""
        assert self.backend is not None and self.examples is not None
        done: dict[str, Prompt] = {}
        failures: list[Failure] = []
        sent = 0
        for attempt in range(self.params.retries + 1):
            if not pending:
                break
            requests = [
                build_request(p.clip_id, p.facts, attempt, self.examples, self.params.few_shot, self.seed, self.stage)
                for p in pending
            ]
            generations = self.backend.generate(requests)
            sent += len(requests)
            if len(generations) != len(requests):
                raise RuntimeError(
                    f"backend {self.backend.name} answered {len(generations)} of {len(requests)} requests"
                )
            still: list[_Pending] = []
            for p, gen in zip(pending, generations, strict=True):
                if gen.text is None:
                    p.rejected.append(f"attempt {attempt + 1}: backend error: {gen.error or 'no text'}")
                    still.append(p)
                    continue
                text = clean_generation(gen.text)
                issues = check_prompt(text, p.facts)
                if issues:
                    p.rejected.append(f"attempt {attempt + 1}: {'; '.join(issues)}")
                    still.append(p)
                    continue
                done[p.clip_id] = Prompt(
                    id=p.clip_id,
                    prompt=text,
                    style=p.style,
                    backend=self.params.backend,
                    requested_backend=self.params.backend,
                    model=self.backend.model,
                    attempts=attempt + 1,
                    fallback=False,
                    rejected=p.rejected,
                )
                self.cache.put(p.key, done[p.clip_id])
            pending = still
        for p in pending:
            try:
                fallback = self._template_record(p.clip_id, p.style, p.facts)
            except TemplateError as exc:
                failures.append(Failure(id=p.clip_id, stage=self.stage, reason=f"TemplateError: {exc}"))
                continue
            done[p.clip_id] = fallback.model_copy(
                update={"attempts": self.params.retries + 1, "fallback": True, "rejected": p.rejected}
            )
            self.cache.put(p.key, done[p.clip_id])
        if pending:
            log.info("%s: %d of the LLM prompts fell back to templates", self.stage, len(pending))
        return done, failures, sent
