"""Cut one song into clips: audio, JSON sidecar and MIDI span per clip.

Everything a clip states is measured on its own span: the instruments with notes
starting in it (and audible in the mix), the tempo and key in effect there, the
timbre of its own audio and what each part's notes do inside it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pretty_midi
import soundfile as sf

from pipeline.analysis.key import KeyLabel
from pipeline.analysis.notation import describe_notation
from pipeline.analysis.tag import measure_timbre, notation_info
from pipeline.analysis.timbre import TimbreThresholds
from pipeline.audio.loudness import integrated_lufs
from pipeline.audio.stems import stem_samples
from pipeline.clips.grid import BarGrid, bar_grid
from pipeline.clips.labels import (
    SpanLabels,
    clip_audio_tempo,
    key_labels,
    meter_labels,
    song_notes_key,
    span_signature,
    tempo_labels,
)
from pipeline.clips.plan import ClipPlan, plan_clips
from pipeline.clips.sections import bar_features, midi_sections, spotify_sections
from pipeline.errors import ItemError
from pipeline.io.atomic import write_bytes, write_json
from pipeline.midi.load import parse_midi
from pipeline.midi.write import instruments_to_midi
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
    Track,
)

SPAN_EPS_S = 1e-4  # a note this close before a bar line belongs to the bar (rounded times)


@dataclass(frozen=True)
class ClipJob:
    mix: MixSong
    split: SplitSong
    tag: TagSong
    metadata: MetadataSong | None
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


def write_wav(path: Path, x: np.ndarray, sr: int) -> None:
    """A clip's WAV: 44.1 kHz 16-bit, clipped to full scale, written atomically."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
    write_bytes(path, buf.getvalue())


@dataclass(frozen=True)
class _Song:
    """What every clip of one song is cut from."""

    job: ClipJob
    alternatives: Mapping[str, list[str]]  # track id -> its rule's patches (the whole corpus's)
    grid: BarGrid
    parts: list[_Part]
    source: pretty_midi.PrettyMIDI
    mix: Path  # read a clip's window at a time (a long song is never held in memory)
    sample_rate: int
    solo: set[str]  # track ids whose solo stems also get clips
    song_key: KeyLabel | None  # the key of all the song's notes
    song_audio: KeyLabel  # essentia's key of the song's mix (tag stage)
    section_source: str


def _solo_tracks(p: ClipParams, parts: list[_Part]) -> list[_Part]:
    if p.stems == "all":
        return parts
    if p.stems == "monophonic":
        return [part for part in parts if part.track.polyphony == "monophonic" and not part.track.is_drum]
    return []


def cut_song(job: ClipJob, alternatives: Mapping[str, list[str]]) -> SongClips:
    """Worker entry point: one song's clips. `alternatives` (track id -> its rule's patches) is
    the run's corpus-wide table, map_items' context: shipped to each worker once, not per song."""
    p, split = job.params, job.split
    parts = _load_parts(job)
    source = parse_midi((job.root / split.source_midi).read_bytes()).pm
    grid = bar_grid(source, max(n.end for part in parts for n in part.inst.notes))
    starts, section_source = _section_starts(job, grid, parts)
    plans, skipped = plan_clips(grid, starts, p.bar_counts, p.window_s, p.tail)
    sr = sf.info(str(job.root / job.mix.mix)).samplerate
    solo = {part.track.id for part in _solo_tracks(p, parts)}
    song_key = song_notes_key([part.inst for part in parts], p.labels)
    song_audio = KeyLabel(*job.tag.key.audio.split(" "))
    song = _Song(
        job, alternatives, grid, parts, source, job.root / job.mix.mix, sr, solo, song_key, song_audio, section_source
    )
    clips: list[Clip] = []
    dropped = [(f"{job.mix.id}/bars{s.bar_start}+{s.bars}", s.reason) for s in skipped]
    for index, plan in enumerate(plans):
        made, why = _cut_plan(song, f"{job.mix.id}/c{index:03d}", plan)
        clips += made
        dropped += why
    return SongClips(clips, dropped, section_source, len(starts))


def _file_excerpt(path: Path, s0: int, s1: int) -> tuple[np.ndarray, int]:
    """A file's samples [s0, s1), zero-padded past its end, read with a seek (songs are never held in memory)."""
    with sf.SoundFile(str(path)) as f:
        f.seek(min(s0, f.frames))
        x = f.read(max(0, min(s1, f.frames) - min(s0, f.frames)), dtype="float32", always_2d=True)
    return _excerpt(x, 0, s1 - s0)


def _stem_excerpt(song: _Song, part: _Part, s0: int, s1: int) -> tuple[np.ndarray, int]:
    x, pad = _file_excerpt(song.job.root / part.stem.audio, s0, s1)
    return stem_samples(x, part.stem), pad


def _audible(song: _Song, playing: list[_Part], s0: int, s1: int, clip_lufs: float):
    """Split the playing parts into those heard in the mix clip and those too quiet to name
    (their stem's loudness in the mix more than clip.labels.part_floor_db under the clip's)."""
    mix, floor = song.job.mix, song.job.params.labels.part_floor_db
    heard, quiet, excerpts = [], [], {}
    for part in playing:
        excerpt, pad = _stem_excerpt(song, part, s0, s1)
        lufs = integrated_lufs(excerpt, song.sample_rate)
        excerpts[part.track.id] = (excerpt, pad, lufs)  # the loudness is the solo clip's too
        in_mix = lufs + mix.shared_gain_db + mix.mix_gain_db
        (heard if in_mix >= clip_lufs - floor else quiet).append(part)
    return heard, quiet, excerpts


def span_labels(song: _Song, parts: list[_Part], start_s: float, end_s: float, bars: tuple[int, int],
                excerpt: np.ndarray) -> SpanLabels:  # fmt: skip
    """Key, BPM and meter of the span from its own evidence (pipeline/clips/labels.py)."""
    p, split = song.job.params.labels, song.job.split
    mono = excerpt.mean(axis=1)
    time_signature, meter = meter_labels(song.grid.meters[bars[0] : bars[0] + bars[1]])
    audio_bpm = clip_audio_tempo(mono, song.sample_rate, p)
    bpm, tempo = tempo_labels(split.tempo_map, start_s, end_s, time_signature, audio_bpm, p)
    signature = span_signature(split.key_signatures, start_s, end_s)
    context = [x.inst for x in song.parts]
    key, key_ev = key_labels(
        [x.inst for x in parts],
        start_s,
        end_s,
        signature,
        mono,
        song.sample_rate,
        p,
        context,
        song.song_key,
        song.song_audio,
    )
    return SpanLabels(key, bpm, time_signature, key_ev, tempo, meter)


def _stem_labels(labels: SpanLabels, part: _Part) -> SpanLabels:
    """A solo stem states its span's key only when it is pitched (a drum stem never does)."""
    if not part.track.is_drum:
        return labels
    ev = labels.key_evidence.model_copy(update={"tonal": False, "withheld": "not tonal: drums only"})
    return SpanLabels(None, labels.bpm, labels.time_signature, ev, labels.tempo_evidence, labels.meter_evidence)


def _cut_plan(song: _Song, cid: str, plan: ClipPlan) -> tuple[list[Clip], list[tuple[str, str]]]:
    job, grid, sr = song.job, song.grid, song.sample_rate
    p, mix = job.params, job.mix
    start_s, end_s = grid.span_s(plan.bar_start, plan.bars)
    last_bar_s = grid.duration_s(plan.bar_start + plan.bars - 1, 1)
    s0, s1 = round(start_s * sr), round((end_s + plan.pad_bars * last_bar_s) * sr)
    playing = [part for part in song.parts if _plays(part.inst, start_s, end_s)]
    if not playing:
        return [], [(cid, "no notes start in its bars")]
    mix_excerpt, mix_pad = _file_excerpt(song.mix, s0, s1)
    mix_lufs = integrated_lufs(mix_excerpt, sr)
    if not mix_lufs > p.silence_lufs:
        return [], [(cid, f"near-silent: {mix_lufs:.1f} LUFS <= clip.silence_lufs {p.silence_lufs:g}")]
    playing, quiet, stem_audio = _audible(song, playing, s0, s1, mix_lufs)
    if not playing:
        return [], [(cid, "near-silent parts: every part is under clip.labels.part_floor_db")]
    name = cid.rsplit("/", 1)[1]
    audio_dir, midi_path = job.out_audio / mix.id, job.out_midi / mix.id / f"{name}.mid"
    span = (int(grid.ticks[plan.bar_start]), int(grid.ticks[plan.bar_start + plan.bars]))
    write_bytes(midi_path, instruments_to_midi(song.source, [part.inst for part in playing], span))
    instruments = [
        ClipInstrument(
            track_id=part.track.id, midi_track=k, name=part.track.name, family=part.track.family,
            subfamily=part.track.subfamily, program=part.track.program, is_drum=part.track.is_drum,
            patch=part.stem.patch, balance=part.stem.balance,
            alternatives=song.alternatives.get(part.track.id, [part.stem.patch]),
            notation=notation_info(describe_notation(part.inst, part.pm, start_s, end_s)),
        )
        for k, part in enumerate(playing)
    ]  # fmt: skip
    loopable = (
        plan.pad_bars == 0
        and (plan.bars & (plan.bars - 1)) == 0
        and not any(_crosses(n, start_s) or _crosses(n, end_s) for part in playing for n in part.inst.notes)
    )
    labels = span_labels(song, playing, start_s, end_s, (plan.bar_start, plan.bars), mix_excerpt)
    meta = job.metadata
    common = dict(
        song_id=mix.id, artist=mix.artist, title=mix.title, split=job.split_name, section=plan.section,
        section_source=song.section_source, bar_start=plan.bar_start, bars=plan.bars + plan.pad_bars,
        loopable=loopable, seconds_start=round(start_s, 6), sample_rate=sr,
        genre_tags=list(meta.Tags) if meta else [],
        energy=meta.energy if meta else None, acousticness=meta.acousticness if meta else None,
        midi=midi_path.relative_to(job.root).as_posix(),
    )  # fmt: skip
    Take = tuple[str, Literal["mix", "stem"], np.ndarray, int, float, list[ClipInstrument], str | None, SpanLabels]
    takes: list[Take]
    takes = [(cid, "mix", mix_excerpt, mix_pad, mix_lufs, instruments, None, labels)]
    quiet_ids = [part.track.id for part in quiet]
    for inst, part in zip(instruments, playing, strict=True):
        if part.track.id in song.solo:
            stem_id = f"{cid}-{part.track.id.rsplit('/', 1)[1]}"
            excerpt, pad, lufs = stem_audio[part.track.id]
            solo_labels = _stem_labels(labels, part)
            takes.append((stem_id, "stem", excerpt, pad, lufs, [inst], part.stem.patch_detail, solo_labels))
    made, dropped = [], []
    for clip_id, kind, excerpt, pad, lufs, insts, detail, lab in takes:
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
            timbre=timbre.tags, timbre_features=timbre.features, key=lab.key, bpm=lab.bpm,
            time_signature=lab.time_signature, label_sources={**lab.sources(), "sections": song.section_source},
            key_evidence=lab.key_evidence, tempo_evidence=lab.tempo_evidence, meter_evidence=lab.meter_evidence,
            quiet_instruments=quiet_ids if kind == "mix" else [], **common,
        )  # fmt: skip
        write_wav(wav, excerpt, sr)
        write_json(sidecar, clip.model_dump(mode="json"))
        made.append(clip)
    return made, dropped
