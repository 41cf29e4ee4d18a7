"""Recordings the tests make: a band rendered with FluidSynth from MIDI with a known tempo and key,
then re-encoded to other formats, rates and channel counts (the way real files arrive)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf
import soxr

from pipeline.render.events import instrument_events
from pipeline.render.fluid import SoundFontBackend

SR = 44100
_MAJOR = (0, 4, 7)
_MINOR = (0, 3, 7)


def band_midi(bpm: float, tonic_pc: int, minor: bool, bars: int) -> pretty_midi.PrettyMIDI:
    """Drums on every beat (kick 1/3, snare 2/4, eighth hats), a root-fifth bass and I-IV-V-I chords."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    beat = 60.0 / bpm
    third = _MINOR if minor else _MAJOR
    degrees = (0, 5, 7, 0)  # I IV V I (roots in semitones above the tonic)
    drums, bass, keys = pretty_midi.Instrument(0, is_drum=True), pretty_midi.Instrument(33), pretty_midi.Instrument(0)
    for bar in range(bars):
        t0 = bar * 4 * beat
        root = 48 + tonic_pc + degrees[bar % 4]
        for k in range(4):
            hit = t0 + k * beat
            drums.notes.append(pretty_midi.Note(110, 36 if k % 2 == 0 else 38, hit, hit + 0.1))
            for h in (0.0, 0.5):
                drums.notes.append(pretty_midi.Note(70, 42, hit + h * beat, hit + h * beat + 0.05))
            bass.notes.append(pretty_midi.Note(100, root - 12 + (7 if k % 2 else 0), hit, hit + 0.9 * beat))
        for step in third:
            keys.notes.append(pretty_midi.Note(80, root + step, t0, t0 + 4 * beat - 0.05))
        # the scale's characteristic notes, so the key is unambiguous
        for k, step in enumerate((0, 2, 3 if minor else 4, 7) if bar % 2 else (7, 5, 3 if minor else 4, 2)):
            keys.notes.append(pretty_midi.Note(70, 72 + tonic_pc + step, t0 + k * beat, t0 + (k + 0.9) * beat))
    pm.instruments.extend([drums, bass, keys])
    return pm


@functools.cache
def _band_parts(bpm: float, tonic_pc: int, minor: bool, bars: int) -> tuple[np.ndarray, ...]:
    """The band's drums, bass and keys as FluidSynth renders them: (frames, 2) float32 at 44.1 kHz."""
    pm = band_midi(bpm, tonic_pc, minor, bars)
    end = pm.get_end_time() + 1.0
    parts = []
    for inst in pm.instruments:
        backend = SoundFontBackend(None, 128 if inst.is_drum else 0, 0 if inst.is_drum else inst.program, SR)
        parts.append(np.concatenate(list(backend.render(instrument_events(inst, 9 if inst.is_drum else 0), end,
                                                        SR, SR * 10))))  # fmt: skip
    return tuple(parts)


@functools.cache
def band_audio(bpm: float, tonic_pc: int, minor: bool, bars: int) -> np.ndarray:
    """(frames, 2) float32 at 44.1 kHz, peak -6 dBFS."""
    mix = sum(_band_parts(bpm, tonic_pc, minor, bars))
    return (mix * (0.5 / np.abs(mix).max())).astype(np.float32)


def band_stems(bpm: float, tonic_pc: int, minor: bool, bars: int) -> dict[str, np.ndarray]:
    """The band's parts {drums, bass, keys} at band_audio's scale (they sum to it, to float32 rounding)."""
    parts = _band_parts(bpm, tonic_pc, minor, bars)
    scale = 0.5 / np.abs(sum(parts)).max()
    return {name: (x * scale).astype(np.float32) for name, x in zip(("drums", "bass", "keys"), parts, strict=True)}


def write_recording(
    path: Path, x: np.ndarray, sample_rate: int = SR, channels: int = 2, subtype: str | None = None
) -> Path:
    """`x` (44.1 kHz stereo) written as `path`'s format at `sample_rate` with `channels` channels
    (1: the mid; more than 2: left, right, then the mid on the third channel and silence after)."""
    y = x if sample_rate == SR else soxr.resample(x, SR, sample_rate, quality="HQ").astype(np.float32)
    if channels == 1:
        y = y.mean(axis=1, keepdims=True)
    elif channels > 2:
        extra = np.zeros((len(y), channels - 2), dtype=np.float32)
        y = np.concatenate([y, extra], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), y, sample_rate, subtype=subtype)
    return path
