"""Cut one song into clips: audio, JSON sidecar and MIDI span per clip.

Everything a clip states is measured on its own span: the instruments with notes
starting in it (and audible in the mix), the tempo and key in effect there, the
timbre of its own audio and what each part's notes do inside it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pretty_midi
import soundfile as sf

from pipeline.analysis.notation import describe_notation
from pipeline.analysis.tag import measure_timbre, notation_info
from pipeline.analysis.tempo import midi_tempo
from pipeline.analysis.timbre import TimbreThresholds
from pipeline.audio.loudness import integrated_lufs
from pipeline.clips.grid import BarGrid, bar_grid
from pipeline.clips.plan import ClipPlan, plan_clips
from pipeline.clips.sections import bar_features, midi_sections, spotify_sections
from pipeline.io.atomic import write_bytes, write_json
from pipeline.midi.load import parse_midi
from pipeline.midi.write import instruments_to_midi
from pipeline.parallel import ItemError
from pipeline.params import ClipParams
from pipeline.records import (
    Clip,
    ClipInstrument,
    MetadataSong,
    MixSong,
    Split,
    SplitSong,
    Stem,
    TagSong,
    TempoChange,
    Track,
)

SPAN_EPS_S = 1e-4  # a note this close before a bar line belongs to the bar (rounded times)


@dataclass(frozen=True)
class ClipJob:
    mix: MixSong
    split: SplitSong
    tag: TagSong
    metadata: MetadataSong | None
    alternatives: dict[str, list[str]]  # track id -> its rule's patches
    split_name: Split
    root: Path
    out_audio: Path  # data/clip/audio
    out_midi: Path  # data/clip/midi
    params: ClipParams
    thresholds: TimbreThresholds


@dataclass(frozen=True)
class SongClips:
    clips: list[Clip]
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (clip id, reason)
    section_source: str = "midi"
    sections: int = 0


@dataclass(frozen=True)
class _Part:
    track: Track
    stem: Stem
    inst: pretty_midi.Instrument
    pm: pretty_midi.PrettyMIDI


def _load_parts(job: ClipJob) -> list[_Part]:
    stems = {s.id: s for s in job.mix.stems}
    parts = []
    for track in job.split.tracks:
        if track.id not in stems or track.id in job.mix.silent_stems:
            continue  # not audible in the mix: no clip may claim it
        pm = parse_midi((job.root / track.midi).read_bytes()).pm
        inst = next((i for i in pm.instruments if i.notes), None)
        if inst is not None:
            parts.append(_Part(track, stems[track.id], inst, pm))
    if not parts:
        raise ItemError("no audible track with notes")
    return parts


def _section_starts(job: ClipJob, grid: BarGrid, parts: list[_Part]) -> tuple[list[int], str]:
    p = job.params.sections
    if p.source == "none":
        return [0], "none"
    if p.source == "auto" and job.metadata is not None and job.metadata.sections:
        return spotify_sections(job.metadata.sections, grid, p.min_bars), "spotify"
    features = bar_features([part.inst for part in parts], grid)
    return midi_sections(features, p.novelty, p.min_bars, p.rest_bars), "midi"


def span_bpm(tempo_map: Sequence[TempoChange], start_s: float, end_s: float) -> float:
    """Quarter-note BPM over [start, end), weighted by how long each tempo holds."""
    changes = [(c.time_s, c.tempo_bpm) for c in tempo_map]
    current = (
        [bpm for t, bpm in changes if t <= start_s + SPAN_EPS_S][-1] if changes[0][0] <= start_s else changes[0][1]
    )
    shifted = [(0.0, current)] + [(t - start_s, bpm) for t, bpm in changes if start_s + SPAN_EPS_S < t < end_s]
    return round(midi_tempo(shifted, end_s - start_s), 3)


def _span_key(job: ClipJob, start_s: float) -> str:
    """The song's key label; with MIDI labels and key changes, the signature in effect at the clip's start."""
    sigs = job.split.key_signatures
    if job.tag.key.label_source == "midi" and len(sigs) > 1:
        now = [k for k in sigs if k.time_s <= start_s + SPAN_EPS_S] or sigs[:1]
        return f"{now[-1].tonic} {now[-1].scale}"
    return job.tag.key.label


def _plays(inst: pretty_midi.Instrument, start_s: float, end_s: float) -> bool:
    return any(start_s - SPAN_EPS_S <= n.start < end_s - SPAN_EPS_S and n.end > n.start for n in inst.notes)


def _crosses(note: pretty_midi.Note, line_s: float) -> bool:
    """The note sounds across the bar line (a tied note: the clip would not loop cleanly)."""
    return note.start < line_s - SPAN_EPS_S and note.end > line_s + SPAN_EPS_S


def _excerpt(x: np.ndarray, s0: int, s1: int) -> tuple[np.ndarray, int]:
    """Samples [s0, s1), zero-padded past the audio's end; returns the padding length."""
    out = np.zeros((s1 - s0, x.shape[1]), dtype=np.float32)
    have = max(0, min(s1, len(x)) - s0)
    out[:have] = x[s0 : s0 + have]
    return out, (s1 - s0) - have


def _write_wav(path: Path, x: np.ndarray, sr: int) -> None:
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
    write_bytes(path, buf.getvalue())


@dataclass(frozen=True)
class _Song:
    """What every clip of one song is cut from."""

    job: ClipJob
    grid: BarGrid
    parts: list[_Part]
    source: pretty_midi.PrettyMIDI
    mix: np.ndarray
    sample_rate: int
    solo: dict[str, np.ndarray]  # track id -> its stem, for the solo-stem clips
    section_source: str


def _solo_tracks(p: ClipParams, parts: list[_Part]) -> list[_Part]:
    if p.stems == "all":
        return parts
    if p.stems == "monophonic":
        return [part for part in parts if part.track.polyphony == "monophonic" and not part.track.is_drum]
    return []


def cut_song(job: ClipJob) -> SongClips:
    p, split = job.params, job.split
    parts = _load_parts(job)
    source = parse_midi((job.root / split.source_midi).read_bytes()).pm
    grid = bar_grid(source, max(n.end for part in parts for n in part.inst.notes))
    starts, section_source = _section_starts(job, grid, parts)
    plans, skipped = plan_clips(grid, starts, p.bar_counts, p.window_s, p.tail)
    x, sr = sf.read(str(job.root / job.mix.mix), dtype="float32", always_2d=True)
    solo = {
        part.track.id: sf.read(str(job.root / part.stem.audio), dtype="float32", always_2d=True)[0]
        for part in _solo_tracks(p, parts)
    }
    song = _Song(job, grid, parts, source, x, sr, solo, section_source)
    clips: list[Clip] = []
    dropped = [(f"{job.mix.id}/bars{s.bar_start}+{s.bars}", s.reason) for s in skipped]
    for index, plan in enumerate(plans):
        made, why = _cut_plan(song, f"{job.mix.id}/c{index:03d}", plan)
        clips += made
        dropped += why
    return SongClips(clips, dropped, section_source, len(starts))


def _cut_plan(song: _Song, cid: str, plan: ClipPlan) -> tuple[list[Clip], list[tuple[str, str]]]:
    job, grid, sr = song.job, song.grid, song.sample_rate
    p, mix = job.params, job.mix
    start_s, end_s = grid.span_s(plan.bar_start, plan.bars)
    last_bar_s = grid.duration_s(plan.bar_start + plan.bars - 1, 1)
    s0, s1 = round(start_s * sr), round((end_s + plan.pad_bars * last_bar_s) * sr)
    playing = [part for part in song.parts if _plays(part.inst, start_s, end_s)]
    if not playing:
        return [], [(cid, "no notes start in its bars")]
    name = cid.rsplit("/", 1)[1]
    audio_dir, midi_path = job.out_audio / mix.id, job.out_midi / mix.id / f"{name}.mid"
    span = (int(grid.ticks[plan.bar_start]), int(grid.ticks[plan.bar_start + plan.bars]))
    write_bytes(midi_path, instruments_to_midi(song.source, [part.inst for part in playing], span))
    instruments = [
        ClipInstrument(
            track_id=part.track.id, midi_track=k, name=part.track.name, family=part.track.family,
            subfamily=part.track.subfamily, program=part.track.program, is_drum=part.track.is_drum,
            patch=part.stem.patch, alternatives=job.alternatives.get(part.track.id, [part.stem.patch]),
            notation=notation_info(describe_notation(part.inst, part.pm, start_s, end_s)),
        )
        for k, part in enumerate(playing)
    ]  # fmt: skip
    loopable = (
        plan.pad_bars == 0
        and (plan.bars & (plan.bars - 1)) == 0
        and not any(_crosses(n, start_s) or _crosses(n, end_s) for part in playing for n in part.inst.notes)
    )
    meta = job.metadata
    common = dict(
        song_id=mix.id, artist=mix.artist, title=mix.title, split=job.split_name, section=plan.section,
        section_source=song.section_source, bar_start=plan.bar_start, bars=plan.bars + plan.pad_bars,
        loopable=loopable, seconds_start=round(start_s, 6), sample_rate=sr,
        key=_span_key(job, start_s), bpm=span_bpm(job.split.tempo_map, start_s, end_s),
        time_signature=grid.meters[plan.bar_start], genre_tags=list(meta.Tags) if meta else [],
        energy=meta.energy if meta else None, acousticness=meta.acousticness if meta else None,
        label_sources={"key": job.tag.key.label_source, "bpm": job.tag.tempo.label_source,
                       "sections": song.section_source},
        midi=midi_path.relative_to(job.root).as_posix(),
    )  # fmt: skip
    takes: list[tuple[str, Literal["mix", "stem"], np.ndarray, list[ClipInstrument], str | None]] = [
        (cid, "mix", song.mix, instruments, None)
    ]
    for inst, part in zip(instruments, playing, strict=True):
        if part.track.id in song.solo:
            stem_id = f"{cid}-{part.track.id.rsplit('/', 1)[1]}"
            takes.append((stem_id, "stem", song.solo[part.track.id], [inst], part.stem.patch_detail))
    made, dropped = [], []
    for clip_id, kind, audio, insts, detail in takes:
        excerpt, pad = _excerpt(audio, s0, s1)
        lufs = integrated_lufs(excerpt, sr)
        if not lufs > p.silence_lufs:
            dropped.append((clip_id, f"near-silent: {lufs:.1f} LUFS <= clip.silence_lufs {p.silence_lufs:g}"))
            continue
        timbre = measure_timbre(excerpt, sr, job.thresholds, detail)
        base = clip_id.rsplit("/", 1)[1]
        wav, sidecar = audio_dir / f"{base}.wav", audio_dir / f"{base}.json"
        clip = Clip(
            id=clip_id, kind=kind, audio=wav.relative_to(job.root).as_posix(),
            sidecar=sidecar.relative_to(job.root).as_posix(), padded_s=round(pad / sr, 6),
            seconds_total=round(len(excerpt) / sr, 6), loudness_lufs=round(lufs, 3), instruments=insts,
            timbre=timbre.tags, timbre_features=timbre.features, **common,
        )  # fmt: skip
        _write_wav(wav, excerpt, sr)
        write_json(sidecar, clip.model_dump(mode="json"))
        made.append(clip)
    return made, dropped
