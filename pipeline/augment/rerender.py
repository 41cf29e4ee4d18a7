"""Re-render a clip's (transformed) MIDI span with the render stage's patches, then mix it as the mix stage does.

Each instrument renders through the render stage's backend factory and event list
(pipeline/render), straight to float audio the length of the span, and a mix clip's parts are
loudness-normalised and summed with the mix stage's gain staging (pipeline/audio).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pretty_midi

from pipeline.audio.loudness import db_to_gain, integrated_lufs
from pipeline.audio.mix import normalise
from pipeline.augment.audio_ops import fit_frames, stereo
from pipeline.errors import ItemError
from pipeline.params import MixParams, RenderParams
from pipeline.records import ClipInstrument
from pipeline.render.events import Backend, SynthEvent, instrument_events
from pipeline.render.job import DRUM_CHANNEL, make_backend
from pipeline.render.placement import balanced


@dataclass(frozen=True)
class Part:
    """One instrument of the clip and the patch that plays it in this variant."""

    instrument: ClipInstrument
    patch: str


def rule_of(render: RenderParams, ci: ClipInstrument) -> str:
    """The instrument-map rule whose patches are the instrument's alternatives (for VST3 error messages)."""
    for rule in render.rules:
        if list(rule.patches) == list(ci.alternatives):
            return rule.name
    return "augment"


def render_part(backend: Backend, events: Sequence[SynthEvent], sample_rate: int, frames: int) -> np.ndarray:
    """One part as float audio of exactly `frames` frames (the span; later notes' tails are cut).

    Float all the way: loudness normalisation follows, so a peak above full scale is no
    clipping here (the render stage's headroom pass exists for its 24-bit files).
    """
    chunks, total = [], 0
    for chunk in backend.render(events, frames / sample_rate, sample_rate, max(1, frames)):
        if not np.all(np.isfinite(chunk)):
            raise ItemError(f"{backend.name} returned NaN or infinite samples")
        chunks.append(chunk)
        total += len(chunk)
    x = np.concatenate(chunks) if chunks else np.zeros((0, 2), dtype=np.float32)
    return fit_frames(stereo(x), frames)


def render_parts(
    pm: pretty_midi.PrettyMIDI, parts: Sequence[Part], render: RenderParams, frames: int
) -> list[np.ndarray | None]:
    """Each part rendered to (frames, 2) float32 with its patch's gain; None for a part without notes."""
    out: list[np.ndarray | None] = []
    for part in parts:
        ci = part.instrument
        if ci.midi_track >= len(pm.instruments):
            raise ItemError(f"{ci.track_id}: MIDI span has no track {ci.midi_track}")
        inst = pm.instruments[ci.midi_track]
        if not any(n.end > n.start for n in inst.notes):
            out.append(None)
            continue
        if part.patch not in render.patches:
            raise ItemError(f"{ci.track_id}: patch {part.patch!r} is not defined under render.patches")
        backend = balanced(make_backend(render, part.patch, rule_of(render, ci), ci.program, ci.is_drum), ci.balance)
        events = instrument_events(inst, DRUM_CHANNEL if ci.is_drum else 0, ci.program)
        x = render_part(backend, events, render.sample_rate, frames)
        gain_db = render.patches[part.patch].gain_db
        out.append(x * np.float32(db_to_gain(gain_db)) if gain_db else x)
    return out


def mix_parts(stems: Sequence[np.ndarray | None], sample_rate: int, mix: MixParams) -> np.ndarray:
    """Bring each audible part to mix.stem_lufs and sum them: the mix stage's balance.

    Two steps of the mix stage are left to `finish`, which sets the variant's final
    loudness under the true-peak ceiling with the same limiter: the shared staging gain
    (sum mode) or 1/n (average mode) is one gain on the sum, which the final loudness
    normalisation cancels exactly; and the per-stem limiter, whose true-peak pass per
    part would be most of a re-render's time, while the final limiter keeps the same
    ceiling on the sum. Parts quieter than mix.silence_lufs are left out, as there.
    """
    acc: np.ndarray | None = None
    for x in stems:
        if x is None:
            continue
        loudness = integrated_lufs(x, sample_rate)
        if loudness < mix.silence_lufs:
            continue
        y = x.astype(np.float64) * db_to_gain(mix.stem_lufs - loudness)
        acc = y if acc is None else acc + y
    if acc is None:
        raise ItemError(f"every part of the re-render is silent (below {mix.silence_lufs} LUFS)")
    return acc.astype(np.float32)


def finish(x: np.ndarray, sample_rate: int, target_lufs: float, mix: MixParams) -> tuple[np.ndarray, float]:
    """Bring the variant to its source clip's loudness under the true-peak ceiling: (audio, loudness after)."""
    loudness = integrated_lufs(x, sample_rate)
    if not np.isfinite(loudness):
        raise ItemError("the variant is silent")
    y, _, _, _, after, _ = normalise(x, sample_rate, target_lufs, mix.ceiling_dbtp, mix.limiter_release_ms, loudness)
    return y, float(after)
