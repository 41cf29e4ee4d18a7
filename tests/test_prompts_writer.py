"""PromptWriter: LLM requests, retry then fallback, batching, the cache, and the examples file.

The LLM is a scripted test double of the `LLMBackend` protocol: the writer's logic is
under test here; the real engines are tested in tests/test_prompts_vllm*.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.params import PromptsParams
from pipeline.prompts.attributes import clip_facts
from pipeline.prompts.backend import ChatRequest, Generation
from pipeline.prompts.chat import RULES, build_request, load_examples
from pipeline.prompts.validate import check_prompt
from pipeline.prompts.writer import PromptWriter
from tests.clip_factory import make_clip
from tests.conftest import REPO

EXAMPLES = REPO / "pipeline/prompts/examples/v1.json"
GOOD = "Electric piano, acoustic bass and drums in A minor at 120 BPM."
LIE = "Electric piano, acoustic bass and drums in A minor at 128 BPM."


class ScriptedLLM:
    """Answers each request from `script(request)`; records every generate call."""

    name = "vllm"
    model = "test/scripted"

    def __init__(self, script: Callable[[ChatRequest], Generation]):
        self.script = script
        self.calls: list[list[ChatRequest]] = []

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        self.calls.append(list(requests))
        return [self.script(r) for r in requests]

    def close(self) -> None:
        pass


def _params(tmp_path: Path, **kw) -> PromptsParams:
    base = {"backend": "vllm", "styles": {"natural": 1, "tags": 0, "subset": 0}, "cache_dir": str(tmp_path / "c")}
    return PromptsParams(**(base | kw))


def _attempt(r: ChatRequest) -> int:
    return int(r.id.rsplit("#llm", 1)[1])


def test_every_example_passes_the_validator_on_its_own_input():
    data = json.loads(EXAMPLES.read_text())
    assert data["version"] == 1 and len(data["examples"]) >= 6
    examples = load_examples(EXAMPLES)
    for ex in examples.items:
        assert check_prompt(ex.output, ex.input) == [], ex.output
    # The LLM sees how a clip with withheld tempo and meter and no genre tags is described.
    assert any(e.input.bpm is None and e.input.time_signature is None and not e.input.genres for e in examples.items)


def test_an_example_that_lies_is_a_config_error(tmp_path):
    data = json.loads(EXAMPLES.read_text())
    data["examples"][0]["output"] = data["examples"][0]["output"].replace("92 BPM", "95 BPM")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="example 0 fails validation"):
        load_examples(bad)


def test_request_shape_and_variety():
    examples = load_examples(EXAMPLES)
    facts = clip_facts(make_clip())
    reqs = [build_request("s/c000", facts, a, examples, 3, 1234, "prompts") for a in range(6)]
    for r in reqs:
        roles = [m["role"] for m in r.messages]
        assert roles == ["system"] + ["user", "assistant"] * 3 + ["user"]
        assert all(rule in r.messages[0]["content"] for rule in RULES)
        assert "bpm: 120" in r.messages[-1]["content"] and "key: A minor" in r.messages[-1]["content"]
        assert "Test Band" not in json.dumps(r.messages)  # no artist or title
    assert len({r.seed for r in reqs}) == 6  # a new seed per attempt
    assert len({r.messages[0]["content"] for r in reqs}) > 1  # rule blocks shuffled
    assert len({r.messages[-1]["content"] for r in reqs}) > 1  # attributes in random order
    assert len({r.messages[2]["content"] for r in reqs}) > 1  # few-shot examples drawn per request
    assert build_request("s/c000", facts, 0, examples, 3, 1234, "prompts") == reqs[0]  # deterministic


def test_request_for_withheld_labels_says_to_state_none():
    examples = load_examples(EXAMPLES)
    facts = clip_facts(make_clip(key=None, bpm=None, time_signature=None))
    user = build_request("s/c000", facts, 0, examples, 0, 1234, "prompts").messages[-1]["content"]
    assert "key: (none; state no key or scale)" in user
    assert "bpm: (none; state no BPM" in user and "time signature: (none; state no time signature" in user
    assert "120" not in user and "4/4" not in user
    assert "genre: (none; name no genre or mood)" in user  # make_clip has no genre tags


def test_request_names_no_wet_or_dry_effect():
    examples = load_examples(EXAMPLES)
    for fx, line in ((["Dry"], "effects: none (dry)"), (["Medium Reverb", "Wet"], "effects: Medium Reverb\n")):
        user = build_request("s/c000", clip_facts(make_clip(fx=fx)), 0, examples, 0, 1, "prompts").messages[-1]
        assert line in user["content"] + "\n" and "Wet" not in user["content"] and "Dry" not in user["content"]


def test_valid_first_try_in_one_batched_call(tmp_path):
    llm = ScriptedLLM(lambda r: Generation(f'"{GOOD}"'))
    clips = [make_clip(i) for i in range(5)]
    batch = PromptWriter(_params(tmp_path), 1, tmp_path, llm).write(clips)
    assert len(llm.calls) == 1 and len(llm.calls[0]) == 5
    assert [p.prompt for p in batch.prompts] == [GOOD] * 5  # quotes stripped
    p = batch.prompts[0]
    assert (p.backend, p.model, p.attempts, p.fallback, p.rejected) == ("vllm", "test/scripted", 1, False, [])
    assert batch.stats.valid_first_try == 5 and batch.stats.retries == 0 and batch.stats.fallbacks == 0


def test_retry_then_fallback(tmp_path):
    # clip 0 lies once then tells the truth; clip 1 always lies; clip 2 errors then lies; clip 3 is fine.
    def script(r: ChatRequest) -> Generation:
        n, a = int(r.id.split("/c")[1][:3]), _attempt(r)
        if n == 0:
            return Generation(LIE if a == 0 else GOOD)
        if n == 1:
            return Generation(LIE.replace("drums", "drums and a saxophone"))
        if n == 2:
            return Generation(None, "engine: out of memory") if a == 0 else Generation(LIE)
        return Generation(GOOD)

    llm = ScriptedLLM(script)
    clips = [make_clip(i) for i in range(4)]
    batch = PromptWriter(_params(tmp_path, retries=2), 1, tmp_path, llm).write(clips)
    assert [len(c) for c in llm.calls] == [4, 3, 2]  # one call per round, only open clips
    assert len({r.seed for c in llm.calls for r in c if r.id.startswith(clips[1].id)}) == 3
    by_id = {p.id: p for p in batch.prompts}
    p0, p1, p2, p3 = (by_id[c.id] for c in clips)
    assert p0.prompt == GOOD and p0.attempts == 2 and not p0.fallback and "128 BPM" in p0.rejected[0]
    assert p1.fallback and p1.backend == "template" and p1.model is None and p1.attempts == 3
    assert len(p1.rejected) == 3 and all("saxophone" in r for r in p1.rejected)
    assert check_prompt(p1.prompt, clip_facts(clips[1])) == [] and p1.style == "natural"
    assert p2.fallback and "out of memory" in p2.rejected[0]
    assert p3.attempts == 1
    s = batch.stats
    assert (s.valid_first_try, s.retries, s.fallbacks, s.llm_written, s.llm_requests) == (1, 5, 2, 2, 9)


def test_fallback_equals_the_template_backends_prompt(tmp_path):
    clip = make_clip(0)
    llm_batch = PromptWriter(_params(tmp_path, retries=0), 1, tmp_path, ScriptedLLM(lambda r: Generation(LIE))).write(
        [clip]
    )
    tpl = PromptWriter(_params(tmp_path / "t", backend="template"), 1, tmp_path, None).write([clip])
    assert llm_batch.prompts[0].prompt == tpl.prompts[0].prompt


def test_tags_and_subset_stay_template_made_with_an_llm(tmp_path):
    llm = ScriptedLLM(lambda r: Generation(GOOD))
    params = _params(tmp_path, styles={"natural": 0, "tags": 1, "subset": 1})
    batch = PromptWriter(params, 1, tmp_path, llm).write([make_clip(i) for i in range(20)])
    assert llm.calls == []
    assert {p.backend for p in batch.prompts} == {"template"} and {p.requested_backend for p in batch.prompts} == {
        "vllm"
    }
    assert set(batch.stats.styles) == {"tags", "subset"}


def test_cache_makes_a_rerun_free_and_identical(tmp_path):
    clips = [make_clip(i) for i in range(6)]
    calls = 0

    def script(r: ChatRequest) -> Generation:
        nonlocal calls
        calls += 1
        return Generation(LIE if _attempt(r) == 0 and r.id.startswith(clips[0].id) else GOOD)

    params = _params(tmp_path, styles={"natural": 1, "tags": 1, "subset": 1})
    first = PromptWriter(params, 1, tmp_path, ScriptedLLM(script)).write(clips)
    assert calls > 0 and first.stats.cache_hits == 0
    calls = 0
    again_llm = ScriptedLLM(script)
    again = PromptWriter(params, 1, tmp_path, again_llm).write(clips)
    assert calls == 0 and again_llm.calls == [] and again.stats.cache_hits == 6
    assert [p.model_dump_json() for p in again.prompts] == [p.model_dump_json() for p in first.prompts]
    assert again.stats.retries == first.stats.retries and again.stats.styles == first.stats.styles
    # A param that shapes the text (or another seed) misses the cache.
    other = PromptWriter(_params(tmp_path, styles={"natural": 1, "tags": 1, "subset": 1}, few_shot=1), 1, tmp_path,
                         ScriptedLLM(script)).write(clips)  # fmt: skip
    assert other.stats.cache_hits == 0


def test_a_failing_template_is_a_failure_not_a_crash(tmp_path, monkeypatch):
    import pipeline.prompts.writer as writer

    monkeypatch.setattr(writer, "template_prompt", lambda style, facts, rng: "a kazoo solo")
    params = _params(tmp_path, backend="template", styles={"natural": 1, "tags": 1, "subset": 1})
    batch = PromptWriter(params, 1, tmp_path, None).write([make_clip(0), make_clip(1)])
    assert batch.prompts == [] and len(batch.failures) == 2
    assert "TemplateError" in batch.failures[0].reason and "fails validation" in batch.failures[0].reason


def test_backend_and_params_must_agree(tmp_path):
    with pytest.raises(ValueError, match="needs a backend"):
        PromptWriter(_params(tmp_path), 1, tmp_path, None)


def test_an_llm_prompt_inventing_a_genre_is_retried_then_replaced(tmp_path):
    # A small LLM called a clip with no genre tags "jazz"; with the tag the same text is kept.
    jazz = "Smooth jazz groove: electric piano, acoustic bass and drums in A minor at 120 BPM."
    llm = ScriptedLLM(lambda r: Generation(jazz))
    untagged, tagged = make_clip(0, genre_tags=[]), make_clip(1, genre_tags=["jazz"])
    batch = PromptWriter(_params(tmp_path, retries=1), 1, tmp_path, llm).write([untagged, tagged])
    by_id = {p.id: p for p in batch.prompts}
    p0, p1 = by_id[untagged.id], by_id[tagged.id]
    assert p0.fallback and "jazz" not in p0.prompt.lower()
    assert len(p0.rejected) == 2 and all("invents a genre 'jazz'" in r for r in p0.rejected)
    assert p1.prompt == jazz and not p1.fallback
