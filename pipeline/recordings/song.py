"""One recording -> a song record: convert the audio, estimate, and merge with the person's labels.

Hand labels win. An estimate fills a field only when the person left it empty (or
left it marked `estimated`) and the estimator is sure enough; otherwise the field
stays empty and the record says why (`withheld`). The record lists which fields are
hand-labelled and which estimated, so prompts and audits can tell them apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.errors import ItemError
from pipeline.ids import song_id
from pipeline.params import RecordingsParams
from pipeline.recordings.audio import SAMPLE_RATE, Converted, SourceInfo, convert, probe, sha256_file
from pipeline.recordings.estimate import estimate
from pipeline.recordings.folder import stem_files
from pipeline.recordings.labels import LabelRow
from pipeline.recordings.vocab import map_instrument
from pipeline.records import TAGGED_FIELDS, RecordedInstrument, RecordedStem, RecordingEstimates, RecordingSong


@dataclass(frozen=True)
class RecordingJob:
    file: str  # relative to `folder`, '/'-separated
    folder: Path
    root: Path  # the project root (record paths are relative to it)
    out_dir: Path
    row: LabelRow | None
    params: RecordingsParams


@dataclass(frozen=True)
class Made:
    song: RecordingSong
    warnings: list[str]


def default_names(file: str) -> tuple[str, str]:
    """(artist, title) of an unlabelled file: its folder and its name, as the MIDI `dir` source does."""
    p = PurePosixPath(file)
    return (p.parent.name or "unknown"), p.stem


def instruments_of(row: LabelRow | None) -> tuple[list[RecordedInstrument], list[str]]:
    """The row's instrument words in the GM vocabulary, and the words that are not in it."""
    known, unknown = [], []
    for word in row.instruments if row else []:
        mapped = map_instrument(word)
        (known.append(mapped) if mapped else unknown.append(word))
    return known, unknown


@dataclass(frozen=True)
class Estimate:
    """One estimable field's estimate and whether it clears its threshold."""

    value: object
    confidence: float | None
    threshold: float
    measure: str  # what the confidence is
    param: str  # the threshold's params key

    @property
    def sure(self) -> bool:
        return self.value is not None and (self.confidence or 0) >= self.threshold


def estimates_of(est: RecordingEstimates, p: RecordingsParams) -> dict[str, Estimate]:
    return {
        "bpm": Estimate(est.bpm, est.bpm_confidence, p.min_tempo_confidence, "beat confidence",
                        "recordings.min_tempo_confidence"),
        "key": Estimate(est.key, est.key_strength, p.min_key_strength, "key strength", "recordings.min_key_strength"),
    }  # fmt: skip


def merged_labels(row: LabelRow | None, est: RecordingEstimates, p: RecordingsParams) -> dict[str, object]:
    """key, bpm, genre and mood with provenance: {key, bpm, genre, mood, hand, estimated, withheld}."""
    hand = row.hand_fields() if row else []
    out: dict[str, object] = {}
    estimated: list[str] = []
    withheld: dict[str, str] = {}
    for field, e in estimates_of(est, p).items():
        if field in hand:
            out[field] = getattr(row, field)
        elif e.sure:
            out[field] = e.value
            estimated.append(field)
        else:
            out[field] = None
            withheld[field] = (
                f"{e.measure} {e.confidence} < {e.param} {e.threshold:g}"
                if e.confidence is not None
                else f"too short to estimate ({est.analysed_s:g} s)"
            )
    for field in TAGGED_FIELDS:  # the tagger's drafts count only once a person confirmed them
        value = getattr(row, field) if row else []
        out[field] = list(value) if field in hand else []
        if value and field not in hand:
            withheld[field] = "the audio tagger's draft, not confirmed (remove it from `estimated` to keep it)"
    out["hand"], out["estimated"], out["withheld"] = hand, sorted(estimated), withheld
    return out


def _convert_audible(src: Path, info: SourceInfo, dst: Path, p: RecordingsParams) -> tuple[Converted, float]:
    """`convert`, then ItemError (and nothing kept) when the file is quieter than recordings.silence_lufs."""
    converted = convert(src, info, dst)
    loudness = converted.measured.loudness_lufs
    if loudness is None or loudness < p.silence_lufs:
        dst.unlink(missing_ok=True)
        level = "no gated block" if loudness is None else f"{loudness:.1f} LUFS"
        raise ItemError(f"silent: {level} is below recordings.silence_lufs {p.silence_lufs:g}")
    return converted, loudness


def stem_word(file: str) -> str:
    """The instrument a stem file's name says: 'bass.wav' -> 'bass', '02_Electric-Bass.flac' -> 'Electric Bass'."""
    name = re.sub(r"[_\-.]+", " ", PurePosixPath(file).stem)
    return re.sub(r"^\s*\d+\s+|\s+\d+\s*$", "", name).strip()


def convert_stems(job: RecordingJob, sid: str, duration_s: float) -> tuple[list[RecordedStem], list[str]]:
    """The recording's stems as 44.1 kHz stereo FLAC beside its mix, and a warning for each stem
    left out (a name outside the vocabulary, unreadable, silent, or not as long as the recording)."""
    p = job.params
    stems: list[RecordedStem] = []
    warnings: list[str] = []
    taken: dict[str, str] = {}
    for rel in stem_files(p, job.folder, job.file):
        word = stem_word(rel)
        instrument = map_instrument(word) if word else None
        name = PurePosixPath(rel).stem
        if instrument is None:
            warnings.append(f"stem {rel}: {word!r} is not an instrument of the GM vocabulary "
                            f"(pipeline/recordings/vocab.py): left out")  # fmt: skip
            continue
        if name in taken:
            warnings.append(f"stem {rel}: the same name as {taken[name]}: left out")
            continue
        src = job.folder / rel
        dst = job.out_dir / sid / "stems" / f"{name}.flac"
        try:
            info = probe(src)
            if abs(info.duration_s - duration_s) > p.stem_tolerance_s:
                raise ItemError(f"{info.duration_s:.2f} s against the recording's {duration_s:.2f} s "
                                f"(recordings.stem_tolerance_s {p.stem_tolerance_s:g})")  # fmt: skip
            converted, loudness = _convert_audible(src, info, dst, p)
        except ItemError as exc:
            warnings.append(f"stem {rel}: {exc}: left out")
            continue
        taken[name] = rel
        stems.append(RecordedStem(instrument=instrument, source=rel, audio=dst.relative_to(job.root).as_posix(),
                                  loudness_lufs=round(loudness, 3), gain_db=converted.gain_db))  # fmt: skip
    return stems, warnings


def _distinct(instruments: list[RecordedInstrument]) -> list[RecordedInstrument]:
    """One of each instrument (two guitar stems name one guitar), in order."""
    first: dict[tuple[str | None, str], RecordedInstrument] = {}
    for i in instruments:
        first.setdefault((i.name, i.family), i)
    return list(first.values())


def make_recording(job: RecordingJob) -> Made:
    p, row = job.params, job.row
    src = job.folder / job.file
    info = probe(src)
    if info.duration_s < p.min_duration_s:
        raise ItemError(f"{info.duration_s:.1f} s is shorter than recordings.min_duration_s {p.min_duration_s:g}")
    if info.duration_s > p.max_duration_s:
        raise ItemError(f"{info.duration_s:.0f} s is longer than recordings.max_duration_s {p.max_duration_s:g}")
    artist, title = default_names(job.file)
    artist, title = (row.artist or artist, row.title or title) if row else (artist, title)
    sid = song_id(artist, title, sha256_file(src))
    dst = job.out_dir / sid / "mix.flac"
    converted, loudness = _convert_audible(src, info, dst, p)
    stems, warnings = convert_stems(job, sid, converted.duration_s)
    est = estimate(src, info, p)
    labels = merged_labels(row, est, p)
    instruments, unknown = instruments_of(row)
    warnings += [f"instrument {w!r} is not in the GM vocabulary (pipeline/recordings/vocab.py): left out"
                 for w in unknown]  # fmt: skip
    if not instruments and not unknown:  # nobody named them: the stems' names do
        instruments = _distinct([s.instrument for s in stems])
    song = RecordingSong(
        id=sid,
        artist=artist,
        title=title,
        source=job.file,
        source_format=info.format,
        source_sample_rate=info.sample_rate,
        source_channels=info.channels,
        audio=dst.relative_to(job.root).as_posix(),
        sample_rate=SAMPLE_RATE,
        duration_s=round(converted.duration_s, 6),
        loudness_lufs=round(loudness, 3),
        gain_db=converted.gain_db,
        instruments=instruments,
        genre_tags=labels["genre"],
        mood_tags=labels["mood"],
        key=labels["key"],
        bpm=labels["bpm"],
        meter=row.meter if row else None,
        description=row.description if row else None,
        licence=row.licence if row else None,
        attribution=row.attribution if row else None,
        hand=labels["hand"],
        estimated=labels["estimated"],
        withheld=labels["withheld"],
        estimates=est,
        stems=stems,
    )  # type: ignore[arg-type]
    return Made(song, warnings)


def draft_row(job: RecordingJob) -> dict[str, object]:
    """The labels file row a person starts from: their labels as they are, every empty estimable
    field filled with the estimate (marked `estimated`), and the estimators' confidences beside."""
    p, row = job.params, job.row
    src = job.folder / job.file
    info = probe(src)
    est = estimate(src, info, p)
    artist, title = default_names(job.file)
    base = row.model_dump() if row else {"file": job.file, "artist": artist, "title": title}
    hand = row.hand_fields() if row else ["artist", "title"]
    estimated = []
    found = estimates_of(est, p)
    for field, e in found.items():
        if field not in hand and e.value is not None:
            base[field] = e.value
            estimated.append(field)
    estimated.sort()
    unsure = [f for f in estimated if not found[f].sure]
    note = f"unsure: {', '.join(unsure)} (below the confidence the pipeline uses; confirm or clear)" if unsure else ""
    return {
        **base,
        "estimated": estimated,
        "duration_s": round(info.duration_s, 3),
        "bpm_confidence": est.bpm_confidence,
        "key_strength": est.key_strength,
        "note": note,
    }
