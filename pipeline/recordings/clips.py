"""Training clips cut from a recording: whole bars of its beat grid when the grid is sure, else by time.

A recording is brought to the mix stage's loudness (mix.mix_lufs) under its true-peak
ceiling, as one gain for the whole file, so its clips sit at the rendered mixes' level
and keep their own dynamics. Clips are consecutive and do not overlap:

- bars: the grid is reliable and its downbeats stand out; each clip holds the most bars
  of clip.bar_counts that fit the window and starts on a downbeat;
- beats: the beats are reliable but the bar phase is not; clips hold a multiple of four
  beats, start on a beat and state no bar count;
- time: no reliable grid (or a recording longer than recordings.grid.max_s); clips of
  the window's length state no bars, and no BPM unless a person gave one.

Labels follow the recording's (hand labels win; recordings/song.py), each checked on the
clip's own audio where it can be: an estimated key only with recordings.clip_estimated_keys
and where the clip's audio agrees with it, a BPM only where the clip's beats are steady, and
a BPM, bar count or meter found on the beat grid only when a person gave the BPM (or with
recordings.clip_estimated_bpm): beat trackers lock onto 2/3 or half the tempo at high confidence.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pretty_midi
import soundfile as sf

from pipeline.analysis.key import KeyLabel, audio_key, relation
from pipeline.analysis.tag import DISTORTED_GM_PRESETS, timbre_adjectives, timbre_values
from pipeline.analysis.timbre import TimbreThresholds
from pipeline.audio.loudness import db_to_gain, integrated_lufs, to_db
from pipeline.audio.measure import measure_file
from pipeline.clips.audit import label_counts
from pipeline.clips.cut import SongClips, write_wav
from pipeline.errors import ItemError
from pipeline.io.atomic import write_json
from pipeline.midi import gm
from pipeline.params import ClipParams, MixParams, RecordingsParams
from pipeline.recordings.grid import Grid, GridParams, drift_of, find_grid, tempo_of
from pipeline.records import (
    RECORDED_PATCH,
    Clip,
    ClipInstrument,
    KeyEvidence,
    MeterEvidence,
    RecordedInstrument,
    RecordingSong,
    Split,
    TempoEvidence,
)

Cut = Literal["bars", "beats", "time"]
BEATS_PER_GROUP = 4  # a clip cut on beats holds a multiple of this many
MIN_TAIL_SHARE = 0.5  # a last by-time clip shorter than this share of the window is dropped


@dataclass(frozen=True)
class RecordingClipJob:
    song: RecordingSong
    split: Split
    root: Path
    out_audio: Path  # data/clip/audio
    clip: ClipParams
    recordings: RecordingsParams
    mix: MixParams
    thresholds: TimbreThresholds


@dataclass(frozen=True)
class Span:
    start: int  # frame
    end: int
    bars: int | None
    bar_start: int
    beats: np.ndarray  # beat times (s) from the span's start to its end, both included


def clip_instrument(ri: RecordedInstrument, track_id: str) -> ClipInstrument:
    """A recorded instrument as the prompts' vocabulary names it (no notes, no patch to change)."""
    is_drum = ri.family == gm.DRUMS_FAMILY
    program = None if is_drum or ri.name is None else pretty_midi.instrument_name_to_program(ri.name)
    return ClipInstrument(
        track_id=track_id, midi_track=None, name=_name(ri, is_drum), family=ri.family,
        subfamily=gm.subfamily(program) if program is not None else ri.family, program=program,
        is_drum=is_drum, patch=RECORDED_PATCH, alternatives=[], notation=None,
    )  # fmt: skip


def clip_instruments(song: RecordingSong) -> list[ClipInstrument]:
    """The labelled instruments, as clips name them."""
    return [clip_instrument(ri, f"{song.id}/i{i:02d}") for i, ri in enumerate(song.instruments)]


@dataclass(frozen=True)
class _Stem:
    """A recorded stem as clip cuts it: its file, its instrument, the gain that sets a solo clip
    at mix.stem_lufs, and the gain that sets it at its level in the mix clips."""

    index: int  # in the song's stems
    path: Path
    part: tuple[str | None, str]  # (GM name, family) of its recorded instrument: how instruments match stems
    instrument: ClipInstrument
    solo_gain: float
    in_mix_gain: float


def _stems(job: RecordingClipJob, mix_gain_db: float) -> list[_Stem]:
    song, mix = job.song, job.mix
    out = []
    for k, stem in enumerate(song.stems):
        path = job.root / stem.audio
        if not path.is_file():
            raise ItemError(f"recording stem missing: {stem.audio} (rerun the recordings stage)")
        solo_db = _gain_db(path, mix.stem_lufs, mix)
        # both files left the recordings stage with their own headroom gain: undo the difference
        in_mix_db = mix_gain_db + song.gain_db - stem.gain_db
        ri = stem.instrument
        out.append(_Stem(k, path, (ri.name, ri.family), clip_instrument(ri, f"{song.id}/s{k:02d}"),
                         db_to_gain(solo_db), db_to_gain(in_mix_db)))  # fmt: skip
    return out


def _excerpt(path: Path, start: int, end: int) -> np.ndarray:
    """Frames [start, end) of a file, zero-padded where a stem ends a little before its recording."""
    x = sf.read(str(path), start=start, stop=end, dtype="float32", always_2d=True)[0]
    if len(x) < end - start:
        x = np.concatenate([x, np.zeros((end - start - len(x), x.shape[1]), dtype=np.float32)])
    return x


def _named(instruments: list[ClipInstrument], song: RecordingSong, heard: set[tuple[str | None, str]]):
    """The instruments a mix clip names: those whose stems play in it (under clip.labels.part_floor_db of
    the clip: quiet) and those with no stem to tell; and the quiet ones' track ids."""
    with_stem = {(s.instrument.name, s.instrument.family) for s in song.stems}
    named, quiet = [], []
    for ci, ri in zip(instruments, song.instruments, strict=True):
        key = (ri.name, ri.family)
        (named if key not in with_stem or key in heard else quiet).append(ci)
    return named, [ci.track_id for ci in quiet]


def _name(ri: RecordedInstrument, is_drum: bool) -> str:
    if is_drum:
        return "Drums"
    return ri.name or " ".join(w.capitalize() for w in ri.word.split())


def plan_spans(grid: Grid | None, frames: int, sr: int, p: ClipParams) -> tuple[Cut, list[Span]]:
    """Where the clips lie (see the module docstring)."""
    window = p.window_s
    if grid is not None and grid.reliable and grid.beats_per_bar and grid.first_downbeat is not None:
        bar_lines = grid.beats[grid.first_downbeat :: grid.beats_per_bar]
        bar_s = float(np.median(np.diff(bar_lines))) if len(bar_lines) > 1 else float("inf")
        fitting = [n for n in p.bar_counts if n * bar_s <= window]
        if fitting:
            spans = _grid_spans(grid.beats, grid.first_downbeat, fitting[0] * grid.beats_per_bar, window, sr)
            per_bar = grid.beats_per_bar
            return "bars", [Span(s.start, s.end, fitting[0], s.bar_start // per_bar, s.beats) for s in spans]
    if grid is not None and grid.reliable and len(grid.beats) > 1:
        beat_s = float(np.median(np.diff(grid.beats)))
        group = int(window / beat_s) // BEATS_PER_GROUP * BEATS_PER_GROUP
        if group >= BEATS_PER_GROUP:
            return "beats", [
                Span(s.start, s.end, None, 0, s.beats) for s in _grid_spans(grid.beats, 0, group, window, sr)
            ]
    size = round(window * sr)
    starts = range(0, frames, size)
    spans = [Span(s, min(frames, s + size), None, 0, np.zeros(0)) for s in starts]
    if len(spans) > 1 and spans[-1].end - spans[-1].start < MIN_TAIL_SHARE * size:
        spans.pop()
    return "time", spans


def _grid_spans(beats: np.ndarray, first: int, per_clip: int, window: float, sr: int) -> list[Span]:
    spans = []
    i = first
    while i + per_clip < len(beats):
        t0, t1 = beats[i], beats[i + per_clip]
        if t1 - t0 <= window + 1e-6:  # a slower passage whose beats no longer fit is skipped
            spans.append(Span(round(t0 * sr), round(t1 * sr), None, i - first, beats[i : i + per_clip + 1]))
        i += per_clip
    return spans


def _gain_db(path: Path, target_lufs: float, mix: MixParams) -> float:
    """One gain to `target_lufs`, lowered where the file's true peak would pass mix.ceiling_dbtp."""
    m = measure_file(path)
    if m.loudness_lufs is None:
        raise ItemError(f"silent: no gated loudness block in {path.name}")
    headroom = mix.ceiling_dbtp - to_db(m.true_peak) if m.true_peak > 0 else float("inf")
    return min(target_lufs - m.loudness_lufs, headroom)


def _grid(job: RecordingClipJob, path: Path) -> Grid | None:
    song, rp = job.song, job.recordings
    if song.duration_s > rp.grid.max_s:
        return None
    mono = sf.read(str(path), dtype="float32", always_2d=True)[0].mean(axis=1)
    hand_bpm = song.bpm if "bpm" in song.hand else None
    hand_meter = song.meter if "meter" in song.hand else None
    return find_grid(mono, song.sample_rate, grid_params(rp), hand_bpm, hand_meter)


def grid_params(rp: RecordingsParams) -> GridParams:
    """The grid's thresholds from params (recordings.min_tempo_confidence and recordings.grid)."""
    g = rp.grid
    return GridParams(rp.min_tempo_confidence, g.max_drift, g.hand_bpm_tolerance, g.min_downbeat_contrast)


def grid_note(cut: Cut, grid: Grid | None, max_s: float) -> str:
    """Why a recording was cut the way it was (for the summary and the clips' label sources)."""
    if grid is None:
        return f"longer than recordings.grid.max_s {max_s:g}"
    if cut == "bars":
        return f"bars of {grid.meter} ({grid.meter_source}), downbeat contrast {grid.contrast}"
    if cut == "beats":
        return f"beats only: {grid.doubt} (meter {grid.meter or 'unknown'})"
    return grid.why or "no span fits the window"


def cut_recording(job: RecordingClipJob) -> SongClips:
    """Worker entry point: the recording's clips, written as WAV + JSON sidecar."""
    song, p = job.song, job.clip
    if not song.instruments:
        raise ItemError("no instruments labelled: a prompt must name what plays (fill `instruments` in the labels)")
    path = job.root / song.audio
    if not path.is_file():
        raise ItemError(f"recording audio missing: {song.audio} (rerun the recordings stage)")
    info = sf.info(str(path))
    sr = int(info.samplerate)
    grid = _grid(job, path)
    cut, spans = plan_spans(grid, int(info.frames), sr, p)
    note = grid_note(cut, grid, job.recordings.grid.max_s)
    gain_db = _gain_db(path, job.mix.mix_lufs, job.mix)
    gain = db_to_gain(gain_db)
    instruments = clip_instruments(song)
    stems = _stems(job, gain_db)
    audio_dir = job.out_audio / song.id
    made: list[Clip] = []
    dropped: list[tuple[str, str]] = []
    for n, span in enumerate(spans):
        cid = f"{song.id}/c{n:03d}"
        x = sf.read(str(path), start=span.start, stop=span.end, dtype="float32", always_2d=True)[0] * gain
        lufs = integrated_lufs(x, sr)
        if not lufs > p.silence_lufs:
            dropped.append((cid, f"near-silent: {lufs:.1f} LUFS <= clip.silence_lufs {p.silence_lufs:g}"))
            continue
        parts = [(stem, _excerpt(stem.path, span.start, span.end)) for stem in stems]
        floor = lufs - p.labels.part_floor_db
        heard = [(stem, raw) for stem, raw in parts if integrated_lufs(raw * stem.in_mix_gain, sr) >= floor]
        named, quiet = _named(instruments, song, {stem.part for stem, _ in heard})
        if not named:
            dropped.append((cid, "near-silent parts: every named part is under clip.labels.part_floor_db"))
            continue
        labels = _labels(job, grid, cut, span, x.mean(axis=1), sr)
        bars, bar_start = (span.bars, span.bar_start) if tempo_sure(job) else (None, 0)
        common = dict(
            song_id=song.id, artist=song.artist, title=song.title, split=job.split, midi=None, section=0,
            section_source="none", bar_start=bar_start, bars=bars, padded_s=0.0, loopable=False,
            seconds_start=round(span.start / sr, 6), sample_rate=sr,
            genre_tags=list(dict.fromkeys([*song.genre_tags, *song.mood_tags])),
            label_sources={**labels.sources, "bars": "downbeats" if bars else "none", "grid": note,
                           "source": "recording"},
            bpm=labels.bpm, time_signature=labels.meter, tempo_evidence=labels.tempo_evidence,
            meter_evidence=labels.meter_evidence,
        )  # fmt: skip
        takes = [(cid, "mix", x, named, labels.key, labels.key_evidence)]
        for stem, raw in heard if p.stems != "none" else []:
            ci = stem.instrument
            key, evidence = labels.key, labels.key_evidence
            if ci.is_drum:  # a drum stem states no key
                key, evidence = None, evidence.model_copy(update={"tonal": False, "withheld": "not tonal: drums only"})
            takes.append((f"{cid}-s{stem.index:02d}", "stem", raw * stem.solo_gain, [ci], key, evidence))
        for clip_id, kind, audio, insts, key, evidence in takes:
            level = integrated_lufs(audio, sr) if kind == "stem" else lufs
            if not level > p.silence_lufs:
                dropped.append((clip_id, f"near-silent: {level:.1f} LUFS <= clip.silence_lufs {p.silence_lufs:g}"))
                continue
            features = timbre_values(audio, sr)
            distorted = any(ci.program in DISTORTED_GM_PRESETS for ci in insts if ci.program is not None)
            base = clip_id.rsplit("/", 1)[1]
            wav, sidecar = audio_dir / f"{base}.wav", audio_dir / f"{base}.json"
            clip = Clip(
                id=clip_id, kind=kind, audio=wav.relative_to(job.root).as_posix(),
                sidecar=sidecar.relative_to(job.root).as_posix(), seconds_total=round(len(audio) / sr, 6),
                loudness_lufs=round(level, 3), instruments=insts, key=key, key_evidence=evidence,
                timbre=timbre_adjectives(features, job.thresholds, distorted), timbre_features=features,
                quiet_instruments=quiet if kind == "mix" else [], **common,
            )  # fmt: skip
            write_wav(wav, audio, sr)
            write_json(sidecar, clip.model_dump(mode="json"))
            made.append(clip)
    return SongClips(made, dropped, section_source=f"recording:{cut}", sections=1)


def tempo_sure(job: RecordingClipJob) -> bool:
    """Whether the grid's tempo may be stated, and bars counted on it: a person gave the BPM (the grid is
    folded to it), or recordings.clip_estimated_bpm lets an unconfirmed beat grid speak."""
    return "bpm" in job.song.hand or job.recordings.clip_estimated_bpm


@dataclass(frozen=True)
class _Labels:
    key: str | None
    bpm: float | None
    meter: str | None
    key_evidence: KeyEvidence
    tempo_evidence: TempoEvidence
    meter_evidence: MeterEvidence
    sources: dict[str, str]


def _labels(job: RecordingClipJob, grid: Grid | None, cut: Cut, span: Span, mono: np.ndarray, sr: int) -> _Labels:
    song, rp = job.song, job.recordings
    hand = set(song.hand)
    # key: a person's key holds; an estimate only where this clip's own audio agrees with it
    heard = audio_key(mono, sr, rp.key_profile)
    tonal = any(i.family != gm.DRUMS_FAMILY for i in song.instruments) or "key" in hand
    key_why: str | None = None
    if "key" in hand:
        key, key_src = song.key, "hand"
    elif not tonal:
        key, key_src, key_why = None, "none", "drums only: no key"
    elif song.key is None:
        key, key_src, key_why = None, "none", song.withheld.get("key", "no key labelled or estimated")
    elif not rp.clip_estimated_keys:
        key, key_src = None, "none"
        key_why = f"estimated {song.key}, not confirmed by a person (recordings.clip_estimated_keys: false)"
    elif heard.label != song.key:
        key, key_src = None, "none"
        key_why = f"the clip's audio sounds {heard.label}, the recording's estimate is {song.key}"
    else:
        key, key_src = song.key, "audio"
    stated = KeyLabel.parse(key) if key is not None else None
    key_evidence = KeyEvidence(
        tonal=tonal, notes=None, notes_confidence=None, context=None, signature=None, audio=heard.label,
        audio_strength=heard.strength, song_audio=song.estimates.key,
        agreement=relation(heard, stated) if stated is not None else None, withheld=key_why,
    )  # fmt: skip
    # BPM: a person's, unless the clip's own beats drift; else the clip's beats when the grid is sure
    beats = span.beats if cut != "time" else np.zeros(0)
    local = tempo_of(beats)
    drift = drift_of(beats) if len(beats) > 2 else 0.0
    steady = drift <= rp.grid.max_drift
    bpm_why: str | None = None
    if "bpm" in hand and steady:
        bpm, bpm_src = song.bpm, "hand"
    elif "bpm" in hand:
        bpm, bpm_src, bpm_why = None, "none", f"the clip's beats drift {drift:.3f} > recordings.grid.max_drift"
    elif local is not None and steady and not tempo_sure(job):
        bpm, bpm_src = None, "none"
        bpm_why = (f"the beat grid's {local:.1f} BPM is not confirmed by a person (recordings.clip_estimated_bpm: "
                   "false; beat trackers lock onto 2/3 or half the tempo at high confidence)")  # fmt: skip
    elif local is not None and steady:
        bpm, bpm_src = round(local, 2), "audio"
    else:
        bpm, bpm_src = None, "none"
        bpm_why = "no beat grid (longer than recordings.grid.max_s)" if grid is None else grid.why or "no beats"
    ibi = np.diff(beats)
    notated = bpm if bpm is not None else (round(local, 2) if local is not None else None)
    tempo_evidence = TempoEvidence(
        notated_bpm=notated,
        min_bpm=round(60 / ibi.max(), 3) if len(ibi) else None,
        max_bpm=round(60 / ibi.min(), 3) if len(ibi) else None,
        steady=steady, felt_bpm=notated, felt_factor=1.0, felt_source="hand" if bpm_src == "hand" else "audio",
        audio_bpm={"essentia": round(local, 3)} if local is not None else {}, withheld=bpm_why,
    )  # fmt: skip
    # meter: a person's holds; an estimated one only with the bars it was found from, on a trusted tempo
    if "meter" in hand:
        meter, meter_src, meter_why = song.meter, "hand", None
    elif cut == "bars" and grid is not None and tempo_sure(job):
        meter, meter_src, meter_why = grid.meter, "audio", None
    elif cut == "bars" and grid is not None:
        meter, meter_src = None, "none"
        meter_why = "bars counted on a tempo nobody confirmed (recordings.clip_estimated_bpm: false)"
    else:
        meter, meter_src = None, "none"
        meter_why = "no meter labelled, and the downbeats were not clear enough to count bars"
    return _Labels(
        key, bpm, meter, key_evidence, tempo_evidence,
        MeterEvidence(meters=[meter] if meter else [], withheld=meter_why),
        {"key": key_src, "bpm": bpm_src, "meter": meter_src},
    )  # fmt: skip


def recordings_summary(recordings: int, songs: list[SongClips], clips: list[Clip]) -> dict[str, Any]:
    """How the recordings were cut and which labels their clips state."""
    rec = [c for c in clips if c.source == "recording"]
    cuts = Counter(s.section_source.split(":", 1)[1] for s in songs if s.section_source.startswith("recording:"))
    return {
        "recordings": recordings,
        "clips": len(rec),
        "stem_clips": sum(c.kind == "stem" for c in rec),
        "splits": dict(sorted(Counter(c.split for c in rec).items())),
        "cut": dict(sorted(cuts.items())),
        "bars_stated": sum(c.bars is not None for c in rec),
        "labels": label_counts(rec),
    }
