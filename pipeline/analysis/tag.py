"""Tag one song: tempo and key from audio and MIDI, their agreement, timbre and notation.

Audio is measured on the whole song up to `tag.analysis.max_s`; a longer song on
max_s // window_s windows spread evenly over it (read with seeks, so memory and
time stay bounded whatever its length): key and timbre on the windows together,
tempo per window (their median). Timbre's active_s then counts the analysed audio.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.analysis.key import KeyLabel, audio_key, midi_key, relation, signature_key
from pipeline.analysis.notation import Notation, describe_notation
from pipeline.analysis.tempo import TempoEstimate, TempoPlan, beat_tempo, midi_tempo, tempo_accuracy, tempo_backend
from pipeline.analysis.timbre import TimbreFeatures, TimbreThresholds, timbre_features, timbre_tags
from pipeline.audio.stems import stem_samples
from pipeline.errors import ItemError
from pipeline.midi.load import parse_midi
from pipeline.params import AnalysisParams, TagParams
from pipeline.records import (
    KeyTags,
    MixSong,
    NotationInfo,
    SplitSong,
    StemTags,
    TagSong,
    TempoTags,
    TimbreInfo,
)


@dataclass(frozen=True)
class TagJob:
    mix: MixSong
    split: SplitSong
    root: Path
    params: TagParams
    tempo: TempoPlan
    thresholds: TimbreThresholds


# GM presets that are distorted by design (overdriven and distortion guitar, charang lead).
# The grit measure can miss their distortion on high single notes, so they are never "clean".
DISTORTED_GM_PRESETS = frozenset({29, 30, 84})
_SOUNDFONT_PRESET = re.compile(r"^soundfont .* bank 0 preset (\d+)$")


def timbre_values(x: np.ndarray, sr: int) -> dict[str, float]:
    """The measured timbre features of `x`, by name."""
    return {k: float(v) for k, v in dataclasses.asdict(timbre_features(x, sr)).items()}


def timbre_adjectives(features: Mapping[str, float], thresholds: TimbreThresholds, distorted: bool) -> list[str]:
    """Adjectives the features support; a sound known to be distorted (`distorted`: a patch distorted by design,
    a distorting effect in an augment FX chain) is never "clean" (the grit measure can miss a mild drive)."""
    tags = list(timbre_tags(TimbreFeatures(**features), thresholds))
    if distorted and "clean" in tags:
        tags.remove("clean")
    return tags


def measure_timbre(x: np.ndarray, sr: int, thresholds: TimbreThresholds, patch_detail: str | None = None) -> TimbreInfo:
    """Timbre features of `x` and the adjectives they make true (a distorted GM preset is never "clean")."""
    values = timbre_values(x, sr)
    m = _SOUNDFONT_PRESET.match(patch_detail or "")
    distorted = bool(m) and int(m[1]) in DISTORTED_GM_PRESETS
    return TimbreInfo(features=values, tags=timbre_adjectives(values, thresholds, distorted))


def notation_info(n: Notation) -> NotationInfo:
    fields = dataclasses.asdict(n)
    fields["pitch_register"] = fields.pop("register")
    return NotationInfo(**fields)


def _notation(path: Path) -> NotationInfo:
    pm = parse_midi(path.read_bytes()).pm
    inst = next(i for i in pm.instruments if i.notes)
    n = describe_notation(inst, pm)
    if n is None:
        raise ItemError(f"{path.name}: no notes to describe")
    return notation_info(n)


def analysis_windows(frames: int, sample_rate: int, p: AnalysisParams) -> list[tuple[int, int]]:
    """The frame ranges analysed: the whole song, or max_s // window_s windows spread evenly over it."""
    if frames <= p.max_s * sample_rate:
        return [(0, frames)]
    width = min(frames, round(p.window_s * sample_rate))
    count = max(1, int(p.max_s // p.window_s))
    return [(int(a), int(a) + width) for a in np.linspace(0, frames - width, count).round()]


def read_windows(path: Path, windows: list[tuple[int, int]]) -> list[np.ndarray]:
    """Each window of a file as float32 (frames, channels); shorter (or empty) past the file's end."""
    with sf.SoundFile(str(path)) as f:
        parts = []
        for a, b in windows:
            if a >= f.frames:
                parts.append(np.zeros((0, f.channels), dtype=np.float32))
                continue
            f.seek(a)
            parts.append(f.read(min(b, f.frames) - a, dtype="float32", always_2d=True))
    return parts


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def estimate_tempo(backend, monos: list[np.ndarray], sample_rate: int) -> TempoEstimate:
    """The backend's estimate of the song (one window), or the median of its windows' estimates."""
    if len(monos) == 1:
        return backend.estimate(monos[0], sample_rate)
    ests = [backend.estimate(m, sample_rate) for m in monos if len(m)]
    bpm = float(np.median([e.bpm for e in ests]))
    return TempoEstimate(round(bpm, 3), round(float(np.mean([e.confidence for e in ests])), 4))


def tag_song(job: TagJob) -> TagSong:
    mix, split, p = job.mix, job.split, job.params
    sr = sf.info(str(job.root / mix.mix)).samplerate
    windows = analysis_windows(sf.info(str(job.root / mix.mix)).frames, sr, p.analysis)
    parts = read_windows(job.root / mix.mix, windows)
    monos = [part.mean(axis=1) for part in parts]
    x, mono = _joined(parts), _joined(monos)
    del parts

    ts = split.time_signatures[0] if split.time_signatures else None
    num, den = (ts.numerator, ts.denominator) if ts else (4, 4)
    quarter = midi_tempo([(t.time_s, t.tempo_bpm) for t in split.tempo_map], split.duration_s)
    beat = beat_tempo(quarter, num, den)
    estimates, acc1, acc2 = {}, {}, {}
    for name in job.tempo.measured:
        est = estimate_tempo(tempo_backend(name, p.tempo.deeprhythm_weights, p.tempo.essentia_method), monos, sr)
        estimates[name] = est.bpm
        acc1[name], acc2[name] = tempo_accuracy(est.bpm, beat, p.tempo.tolerance)

    pm = parse_midi((job.root / split.source_midi).read_bytes()).pm
    k_midi: KeyLabel | None = midi_key(pm)
    k_sig = signature_key(pm)
    k_audio = audio_key(mono, sr, p.key.profile)
    mix_timbre = measure_timbre(x, sr, job.thresholds)
    del monos, mono, x, pm  # only one song-sized array at a time (the stems' come next)
    rel = relation(k_audio, k_midi) if k_midi else None
    agrees = bool(acc1[job.tempo.primary]) and rel == "exact"

    use_audio = p.label_policy == "audio" or k_midi is None
    if p.label_policy == "agree" and not agrees and p.disagreement == "drop":
        raise ItemError(
            f"audio and MIDI disagree (tempo {estimates[job.tempo.primary]} vs {beat} BPM, "
            f"key {k_audio.label} vs {k_midi.label if k_midi else 'none'}); dropped by tag.disagreement"
        )
    tempo = TempoTags(
        midi_bpm=quarter, midi_beat_bpm=beat, audio_bpm=estimates, acc1=acc1, acc2=acc2,
        label_bpm=estimates[job.tempo.primary] if p.label_policy == "audio" else quarter,
        label_source="audio" if p.label_policy == "audio" else "midi",
    )  # fmt: skip
    key = KeyTags(
        midi=k_midi.label if k_midi else None, midi_source=k_midi.source if k_midi else None,
        signature=k_sig.label if k_sig else None,
        signature_relation=relation(k_sig, k_midi) if k_sig and k_midi else None,
        audio=k_audio.label, audio_strength=k_audio.strength, relation=rel,
        label=k_audio.label if use_audio else k_midi.label,  # type: ignore[union-attr]
        label_source="audio" if use_audio else "midi",
    )  # fmt: skip

    tracks = {t.id: t for t in split.tracks}
    stems = []
    for stem in mix.stems:
        y = _joined([stem_samples(x, stem) for x in read_windows(job.root / stem.audio, windows)])
        notation = _notation(job.root / tracks[stem.id].midi)
        timbre = measure_timbre(y, sr, job.thresholds, stem.patch_detail)
        stems.append(StemTags(id=stem.id, timbre=timbre, notation=notation))
    return TagSong(
        id=mix.id, artist=mix.artist, title=mix.title, duration_s=mix.duration_s, time_signature=f"{num}/{den}",
        tempo=tempo, key=key, tempo_backend=job.tempo.primary, agrees=agrees,
        flagged=p.label_policy == "agree" and not agrees, timbre=mix_timbre, stems=stems,
    )  # fmt: skip
