"""Planning variants: which transforms each clip gets, drawn deterministically per clip.

Each enabled axis leads `variants_per_clip` variants of a clip; every other axis
joins such a variant with its `probability`, so combinations occur without every
variant stacking every axis. Draws come from a generator seeded by (run seed,
'augment', clip id), so a clip's plan never depends on other clips, on worker
count or on the order of the manifest. Then two caps apply: per clip
(`max_variants_per_clip`, a seeded draw) and per phrase (`max_variants_per_phrase`,
over all clips that play the same notes), which limits melodic overfitting. A clip
that states no key (drums only, atonal, or its evidence disagrees) gets no key
variants, and one that states no BPM (its tempo varies) no BPM variants.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.augment.fx import EFFECT_ORDER, GRADED, FxStep
from pipeline.ids import item_rng, item_seed, slug
from pipeline.params import AugmentParams, RenderParams
from pipeline.records import AugmentAxis, Clip, Transform

AXES: tuple[AugmentAxis, ...] = ("key", "bpm", "fx", "timbre")
STAGE = "augment"
ORIGINAL = "orig"
_REDRAWS = 8  # attempts to draw a variant not already planned for the clip


@dataclass(frozen=True)
class Draw:
    """The values drawn for one variant, before they become recorded transforms."""

    semitones: int | None = None
    bpm: float | None = None
    chain: tuple[FxStep, ...] = ()
    patches: tuple[tuple[str, str], ...] = ()  # (track_id, patch)

    @property
    def axes(self) -> list[AugmentAxis]:
        present = {"key": self.semitones is not None, "bpm": self.bpm is not None, "fx": bool(self.chain),
                   "timbre": bool(self.patches)}  # fmt: skip
        return [a for a in AXES if present[a]]

    def suffix(self) -> str:
        parts = []
        if self.semitones is not None:
            parts.append(f"k{self.semitones:+d}")
        if self.bpm is not None:
            parts.append(f"bpm{self.bpm:g}".replace(".", "p"))
        if self.chain:
            steps = sorted(self.chain, key=lambda s: EFFECT_ORDER.index(s.effect))
            names = [f"{s.effect.replace('_', '')}-{s.level}" if s.effect in GRADED else s.effect.replace("_", "")
                     for s in steps]  # fmt: skip
            parts.append("fx-" + "+".join(names))
        if self.patches:
            parts.append("tb-" + "+".join(f"{t.rsplit('/', 1)[-1]}-{slug(p, 32)}" for t, p in self.patches))
        return "_".join(parts)


@dataclass(frozen=True)
class Plan:
    """One planned variant of a clip."""

    clip_id: str
    index: int  # order among the clip's plans (the per-phrase cap keeps low indices first)
    draw: Draw
    methods: dict[str, str] = field(default_factory=dict)  # axis -> midi | audio

    @property
    def suffix(self) -> str:
        return self.draw.suffix()

    @property
    def variant_id(self) -> str:
        return f"{self.clip_id}/{self.suffix}"

    def transforms(self, seed: int, source_bpm: float, out_of_range: str) -> list[Transform]:
        """The recorded steps, in the order they are applied: notes (key, tempo), patches, then FX."""
        d, out = self.draw, []

        def add(axis: AugmentAxis, name: str, kwargs: dict[str, object]) -> None:
            out.append(Transform(axis=axis, name=name, kwargs=kwargs,
                                 seed=item_seed(seed, STAGE, f"{self.variant_id}:{axis}")))  # fmt: skip

        if d.semitones is not None:
            if self.methods.get("key") == "midi":
                add("key", "transpose_midi", {"semitones": d.semitones, "out_of_range": out_of_range})
            else:
                add("key", "pitch_shift_audio", {"semitones": d.semitones})
        if d.bpm is not None:
            name = "tempo_midi" if self.methods.get("bpm") == "midi" else "time_stretch_audio"
            add("bpm", name, {"from_bpm": round(source_bpm, 4), "to_bpm": d.bpm})
        if d.patches:
            add("timbre", "repatch_midi", {"patches": dict(d.patches)})
        if d.chain:
            ordered = sorted(d.chain, key=lambda s: EFFECT_ORDER.index(s.effect))
            add("fx", "fx_chain", {"chain": [s.to_dict() for s in ordered]})
        return out


UNKNOWN_TEMPO_BPM = 120.0  # tempo-synced delays of a recording whose beats were not found


def source_bpm(clip: Clip) -> float:
    """The tempo a clip's audio is processed at (tempo-synced delays, stretch ratios): its stated BPM,
    else (withheld: the tempo varies inside the clip) the MIDI's duration-weighted quarter-note BPM
    (a recording's grid BPM; UNKNOWN_TEMPO_BPM when it has none)."""
    if clip.bpm is not None:
        return clip.bpm
    return clip.tempo_evidence.notated_bpm or UNKNOWN_TEMPO_BPM


def bpm_targets(clip: Clip, p: AugmentParams, window_s: float) -> list[float]:
    """Targets a clip may take: a real but bounded change, and its bars still fit the window.

    None for a clip that states no BPM (its tempo varies): no one new tempo would describe its variant."""
    b = p.bpm
    if clip.bpm is None:
        return []
    if b.targets:
        candidates = sorted(set(b.targets))
    else:
        lo, hi = b.range
        candidates = [round(float(t), 4) for t in np.arange(lo, hi + b.step / 2, b.step)]
    return [t for t in candidates
            if b.min_change <= abs(t / clip.bpm - 1) <= b.max_change
            and clip.seconds_total * clip.bpm / t <= window_s + 1e-6]  # fmt: skip


def timbre_candidates(clip: Clip, render: RenderParams) -> list[tuple[str, list[str]]]:
    """Instruments with another patch of their rule to play them, and those patches."""
    out = []
    for ci in clip.instruments:
        alts = sorted({a for a in ci.alternatives if a != ci.patch and a in render.patches})
        if alts:
            out.append((ci.track_id, alts))
    return out


def _method(setting: str, has_midi: bool) -> str:
    return "midi" if setting == "midi" or (setting == "auto" and has_midi) else "audio"


def plan_clip(clip: Clip, p: AugmentParams, render: RenderParams, seed: int, window_s: float,
              has_midi: bool) -> list[Plan]:  # fmt: skip
    """The variants of one clip, before the per-phrase cap."""
    if clip.kind not in p.kinds or p.max_variants_per_clip == 0:
        return []
    rng = item_rng(seed, STAGE, clip.id)
    targets = bpm_targets(clip, p, window_s) if p.bpm.enabled else []
    timbre = timbre_candidates(clip, render) if p.timbre.enabled and has_midi else []
    effects = sorted(n for n, e in p.fx.effects.items() if e.enabled)
    usable = {
        "key": p.key.enabled and clip.key is not None,  # no key stated (drums, atonal): nothing to move
        "bpm": bool(targets),
        "fx": p.fx.enabled and bool(effects),
        "timbre": bool(timbre),
    }
    axis_params = {"key": p.key, "bpm": p.bpm, "fx": p.fx, "timbre": p.timbre}

    def draw(axes: set[str]) -> Draw:
        semitones = int(rng.choice(p.key.semitones)) if "key" in axes else None
        bpm = float(rng.choice(targets)) if "bpm" in axes else None
        chain: tuple[FxStep, ...] = ()
        if "fx" in axes:
            k = int(rng.integers(1, min(p.fx.max_effects, len(effects)) + 1))
            weights = np.array([p.fx.effects[n].weight for n in effects])
            picked = rng.choice(len(effects), size=k, replace=False, p=weights / weights.sum())
            steps = []
            for i in sorted(int(j) for j in picked):
                levels = sorted(p.fx.effects[effects[i]].levels)
                level = levels[int(rng.integers(len(levels)))]
                steps.append(FxStep(effects[i], level, p.fx.effects[effects[i]].levels[level]))
            chain = tuple(sorted(steps, key=lambda s: EFFECT_ORDER.index(s.effect)))
        patches: tuple[tuple[str, str], ...] = ()
        if "timbre" in axes:
            chosen = timbre if p.timbre.instruments == "all" else [timbre[int(rng.integers(len(timbre)))]]
            patches = tuple((tid, alts[int(rng.integers(len(alts)))]) for tid, alts in chosen)
        return Draw(semitones, bpm, chain, patches)

    methods = {"key": _method(p.key.method, has_midi), "bpm": _method(p.bpm.method, has_midi)}
    plans: list[Plan] = []
    seen: set[str] = set()
    for lead in AXES:
        if not usable[lead]:
            continue
        for _ in range(axis_params[lead].variants_per_clip):
            for _attempt in range(_REDRAWS):
                axes = {lead} | {a for a in AXES if a != lead and usable[a]
                                 and rng.random() < axis_params[a].probability}  # fmt: skip
                d = draw(axes)
                if d.suffix() not in seen:
                    seen.add(d.suffix())
                    plans.append(Plan(clip.id, len(plans), d, methods))
                    break
    if len(plans) > p.max_variants_per_clip:
        keep = sorted(int(i) for i in rng.choice(len(plans), size=p.max_variants_per_clip, replace=False))
        plans = [Plan(clip.id, n, plans[i].draw, methods) for n, i in enumerate(keep)]
    return plans


def cap_by_phrase(plans: Sequence[Plan], phrase_of: dict[str, str], limit: int) -> tuple[list[Plan], int]:
    """Keep at most `limit` variants per phrase: each clip's first plans first, clips in id order.

    Returns (kept plans, number dropped)."""
    groups: dict[str, list[Plan]] = defaultdict(list)
    for plan in plans:
        groups[phrase_of[plan.clip_id]].append(plan)
    kept: list[Plan] = []
    for group in groups.values():
        kept += sorted(group, key=lambda q: (q.index, q.clip_id))[:limit]
    kept.sort(key=lambda q: (q.clip_id, q.index))
    return kept, len(plans) - len(kept)
