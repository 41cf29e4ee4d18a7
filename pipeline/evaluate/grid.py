"""The prompt grid: what every model is asked to generate, with the tempo and key it asks for.

Three groups, in this order (the order fixes the sampler batches, hence the audio):

- `tempo`: the reference protocol's tempo prompts (one per genre for every requested BPM);
- `key`: the reference protocol's key prompts (for each of the 24 keys, prompts cycling
  over the genres, starting one genre later for each key, and then over the templates);
- `dataset`: our own prompts, one per style (natural, tags, subset) for each test-split
  mix clip that states both a key and a BPM, written by the prompts stage's template
  writers from the clip's own facts (instruments, BPM, bars, key, ...).

Every prompt carries its own seed (from run.seed or evaluate.seed and the prompt id), so
the grid, and each model's audio, does not depend on which other prompts are in it when
prompts are generated one at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.ids import item_rng, item_seed, slug
from pipeline.midi.keys import NOTE_NAMES
from pipeline.params import EvalGridParams
from pipeline.prompts.attributes import clip_facts
from pipeline.prompts.template import template_prompt
from pipeline.records import Clip

Group = Literal["tempo", "key", "dataset"]
GROUPS: tuple[Group, ...] = ("tempo", "key", "dataset")
SCALES = ("major", "minor")
STAGE = "evaluate"
MAX_TORCH_SEED = 2**31 - 1


class EvalPrompt(BaseModel):
    """One prompt of the grid and what it asks for."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(min_length=1, description="tempo/rock-120bpm, key/c-sharp-minor-rock-0, dataset/<clip id>/tags")
    group: Group
    genre: str = Field(description="the genre the prompt names ('none' for a clip without genre tags)")
    style: str = Field(description="'reference' for the reference protocol's prompts, else the prompt style")
    prompt: str = Field(min_length=1)
    target_bpm: float | None = Field(gt=0, description="the tempo asked for (null: none asked)")
    target_key: str | None = Field(description="'<tonic> <scale>' asked for (null: none asked)")
    seconds: float = Field(gt=0)
    seed: int = Field(ge=0, le=MAX_TORCH_SEED)
    source_clip: str | None = Field(None, description="the test clip a dataset prompt was written from")


def prompt_seed(seed: int, prompt_id: str) -> int:
    """A torch-compatible seed for one prompt."""
    return item_seed(seed, STAGE, prompt_id) % MAX_TORCH_SEED


def _tonic_slug(tonic: str) -> str:
    return tonic[0].lower() + {"#": "-sharp", "b": "-flat"}.get(tonic[1:], "")


def tempo_prompts(g: EvalGridParams, seconds: float, seed: int) -> list[EvalPrompt]:
    out = []
    for bpm in range(g.tempo_min_bpm, g.tempo_max_bpm + 1, g.tempo_step):
        for genre in g.tempo_genres:
            pid = f"tempo/{slug(genre)}-{bpm:03d}bpm"
            text = g.tempo_template.format(genre=genre, bpm=bpm)
            out.append(_prompt(pid, "tempo", genre, "reference", text, float(bpm), None, seconds, seed))
    return out


def key_prompts(g: EvalGridParams, seconds: float, seed: int) -> list[EvalPrompt]:
    out = []
    keys = [f"{tonic} {scale}" for scale in SCALES for tonic in NOTE_NAMES]
    for k, key in enumerate(keys):
        tonic, scale = key.split(" ")
        for i in range(g.key_prompts_per_key):
            genre = g.key_genres[(k + i) % len(g.key_genres)]  # the genres rotate over keys too
            template = g.key_templates[(i // len(g.key_genres)) % len(g.key_templates)]
            pid = f"key/{_tonic_slug(tonic)}-{scale}-{i}"
            text = template.format(genre=genre, key=key)
            out.append(_prompt(pid, "key", genre, "reference", text, None, key, seconds, seed))
    return out


def template_clips(clips: Iterable[Clip], limit: int | None) -> list[Clip]:
    """Test-split mix clips that state both a key and a BPM, by id (the first `limit`)."""
    usable = sorted((c for c in clips if c.split == "test" and c.kind == "mix" and c.key and c.bpm), key=lambda c: c.id)
    return usable if limit is None else usable[:limit]


def dataset_prompts(g: EvalGridParams, clips: list[Clip], seconds: float, seed: int) -> list[EvalPrompt]:
    out = []
    for clip in clips:
        facts = clip_facts(clip)
        genre = facts.genres[0] if facts.genres else "none"
        for style in g.dataset_styles:
            pid = f"dataset/{clip.id}/{style}"
            text = template_prompt(style, facts, item_rng(seed, STAGE, pid))
            p = _prompt(pid, "dataset", genre, style, text, clip.bpm, clip.key, seconds, seed)
            out.append(p.model_copy(update={"source_clip": clip.id}))
    return out


def build_grid(g: EvalGridParams, clips: list[Clip], seconds: float, seed: int) -> list[EvalPrompt]:
    """The whole grid, in group order; ids are unique."""
    grid = tempo_prompts(g, seconds, seed) + key_prompts(g, seconds, seed) + dataset_prompts(g, clips, seconds, seed)
    ids = [p.id for p in grid]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"{dup}: two prompts of the grid share this id (repeated genres in evaluate.grid?)")
    return grid


def _prompt(
    pid: str,
    group: Group,
    genre: str,
    style: str,
    text: str,
    bpm: float | None,
    key: str | None,
    seconds: float,
    seed: int,
) -> EvalPrompt:
    return EvalPrompt(
        id=pid,
        group=group,
        genre=genre,
        style=style,
        prompt=text,
        target_bpm=bpm,
        target_key=key,
        seconds=seconds,
        seed=prompt_seed(seed, pid),
    )
