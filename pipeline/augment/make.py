"""Make one dataset item: a clip as it is, or one planned variant of it (the per-item worker).

A variant is looked up in the content-addressed cache first; only a miss renders.
Note-level transforms (key, tempo, patches) re-render the clip's MIDI span;
otherwise the clip's own audio is processed (pitch shift, time stretch, FX). The
result is always brought to the source clip's loudness under the mix ceiling.
Timbre adjectives are measured on that final audio (what the WAV holds, after FX);
a chain with an effect that distorts (fx.EFFECTS) or a stem of a patch distorted by
design is never called 'clean', nor is an instrument played through such a chain.
A variant whose processing leaves it near-silent (below clip.silence_lufs at its
source clip's level, or after the final limiter; a re-render below mix.silence_lufs)
is dropped with the reason, never written.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi
import soundfile as sf

from pipeline.analysis.tag import timbre_adjectives, timbre_values
from pipeline.analysis.timbre import TimbreThresholds
from pipeline.audio.loudness import integrated_lufs
from pipeline.augment.audio_ops import pitch_shift, stereo, time_stretch
from pipeline.augment.cache import CACHE_VERSION, CacheEntry, VariantCache, digest, file_sha256
from pipeline.augment.dataset import item_base
from pipeline.augment.fx import apply_chain, distorts, fx_labels
from pipeline.augment.labels import (
    distorted_by_design,
    moved_key_evidence,
    notation_of,
    renotate,
    repatch,
    scaled_tempo_evidence,
    through_distortion,
    transpose_key,
)
from pipeline.augment.midi_ops import OutOfRangeSkip, scale_tempo, transpose
from pipeline.augment.rerender import Part, finish, mix_parts, render_parts
from pipeline.augment.spec import ORIGINAL, Plan, source_bpm
from pipeline.errors import ItemError
from pipeline.io.atomic import temp_path
from pipeline.midi.load import parse_midi
from pipeline.midi.write import instruments_to_midi
from pipeline.params import AugmentParams, MixParams, RenderParams
from pipeline.records import Clip, Transform, Variant

WAV_SUBTYPE = "PCM_16"


@dataclass(frozen=True)
class AugmentConfig:
    """What every item of a run shares."""

    root: Path
    dataset_dir: Path
    cache_dir: Path
    augment: AugmentParams
    render: RenderParams
    mix: MixParams
    thresholds: TimbreThresholds
    seed: int
    silence_lufs: float  # clip.silence_lufs: a variant at most this loud is near-silent and dropped


@dataclass(frozen=True)
class ItemJob:
    clip: Clip
    plan: Plan | None  # None: the clip itself
    phrase: str


@dataclass(frozen=True)
class _Item:
    """One job with the run's config, as the helpers below use it."""

    clip: Clip
    plan: Plan | None
    phrase: str
    config: AugmentConfig


@dataclass(frozen=True)
class ItemResult:
    variant: Variant | None
    cached: bool = False
    rendered_parts: int = 0  # instruments synthesised for this item (0 on a cache hit)
    skipped: str | None = None  # a planned variant the out_of_range policy skipped
    dropped: str | None = None  # why a made variant was left out (near-silent)


class NearSilent(Exception):
    """The variant's audio is near-silent: it is dropped (the message says how quiet)."""


def clip_phrases(root: Path, clips: Sequence[Clip]) -> dict[str, str]:
    """Phrase id per clip: the content hash of its MIDI span file, else (a recording) the clip's own id.

    A span's mix and stem clips share one file; a repeated section cut to a span of
    its own is written (from tick 0, with its state restated) to the same bytes, so
    repeats share a phrase too. Hashing bytes, not parsed notes, keeps this cheap.
    """
    by_path: dict[str, str] = {}
    out = {}
    for clip in clips:
        if clip.midi is None:
            out[clip.id] = f"clip:{clip.id}"
            continue
        path = root / clip.midi
        if clip.midi not in by_path:
            by_path[clip.midi] = file_sha256(path)[:16] if path.is_file() else ""
        out[clip.id] = by_path[clip.midi] or f"clip:{clip.id}"
    return out


def _wav_bytes(x: np.ndarray, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sample_rate, format="WAV", subtype=WAV_SUBTYPE)
    return buf.getvalue()


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(dst)
    try:
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _rel(cfg: AugmentConfig, path: Path) -> str:
    return path.relative_to(cfg.root).as_posix()


def make_item(job: ItemJob, config: AugmentConfig) -> ItemResult:
    """Worker entry point: the dataset item for `job` (audio written, sidecar left to the stage).

    `config` is what every item of the run shares: map_items' context, sent to each worker once."""
    item = _Item(job.clip, job.plan, job.phrase, config)
    if item.plan is None:
        return ItemResult(_original(item))
    try:
        return _variant(item)
    except OutOfRangeSkip as skip:
        return ItemResult(None, skipped=str(skip))
    except NearSilent as quiet:
        return ItemResult(None, dropped=str(quiet))


def _original(job: _Item) -> Variant:
    clip, cfg = job.clip, job.config
    src = cfg.root / clip.audio
    if not src.is_file():
        raise ItemError(f"clip audio missing: {clip.audio}")
    base = item_base(cfg.dataset_dir, clip, ORIGINAL, ORIGINAL)
    _copy(src, base.with_suffix(".wav"))
    fields = clip.model_dump(exclude={"id", "audio", "sidecar", "schema_version"})
    return Variant(id=f"{clip.id}/{ORIGINAL}", audio=_rel(cfg, base.with_suffix(".wav")),
                   sidecar=_rel(cfg, base.with_suffix(".json")), source_clip=clip.id, suffix=ORIGINAL,
                   method="identity", transforms=[], phrase=job.phrase, cache_key=None, **fields)  # fmt: skip


@dataclass
class _Work:
    """What a variant needs beyond its plan: parsed, transformed MIDI and the cache key."""

    transforms: list[Transform]
    note_level: bool  # re-rendered from MIDI
    pm: pretty_midi.PrettyMIDI | None  # transformed notes (when the clip has MIDI and notes changed)
    ratio: float  # new tempo / old tempo
    report: dict[str, int]


def _prepare(job: _Item) -> _Work:
    clip, cfg, plan = job.clip, job.config, job.plan
    assert plan is not None
    p = cfg.augment
    d = plan.draw
    if d.bpm is not None and clip.bpm is None:
        raise ItemError(f"a BPM variant of a clip that states no BPM ({clip.tempo_evidence.withheld})")
    transforms = plan.transforms(cfg.seed, source_bpm(clip), p.key.out_of_range)
    names = {t.name for t in transforms}
    note_level = bool(names & {"transpose_midi", "tempo_midi", "repatch_midi"})
    midi_path = cfg.root / clip.midi if clip.midi is not None else None
    if note_level and (midi_path is None or not midi_path.is_file()):
        raise ItemError(f"MIDI span missing for a note-level variant: {clip.midi}")
    pm, report = None, {"folded": 0, "dropped": 0}
    if midi_path is not None and midi_path.is_file() and (d.semitones is not None or d.bpm is not None):
        pm = parse_midi(midi_path.read_bytes()).pm
        if d.semitones is not None:
            families = {ci.midi_track: ci.family for ci in clip.instruments}
            r = transpose(pm, d.semitones, families, p.key.ranges, p.key.out_of_range)
            report = {"folded": r.folded, "dropped": r.dropped}
        if d.bpm is not None:
            scale_tempo(pm, d.bpm / source_bpm(clip))
    elif note_level and midi_path is not None:
        pm = parse_midi(midi_path.read_bytes()).pm  # patches only: the notes as they are
    ratio = d.bpm / source_bpm(clip) if d.bpm is not None else 1.0
    return _Work(transforms, note_level, pm, ratio, report)


def _cache_key(job: _Item, work: _Work) -> str:
    clip, cfg = job.clip, job.config
    r, m = cfg.render, cfg.mix
    spec: dict[str, Any] = {
        "version": CACHE_VERSION,
        "kind": clip.kind,
        "seconds_total": clip.seconds_total,
        "target_lufs": clip.loudness_lufs,
        "transforms": [{"axis": t.axis, "name": t.name, "kwargs": t.kwargs} for t in work.transforms],
        "ceiling": [m.ceiling_dbtp, m.limiter_release_ms],
    }
    if any(t.name == "transpose_midi" for t in work.transforms):
        spec["ranges"] = {k: list(v) for k, v in sorted(job.config.augment.key.ranges.items())}
    if work.note_level:
        patches = dict(job.plan.draw.patches) if job.plan else {}
        parts = []
        for ci in clip.instruments:
            patch = patches.get(ci.track_id, ci.patch)
            spec_ = r.patches[patch].model_dump(mode="json") if patch in r.patches else None
            parts.append([ci.track_id, ci.midi_track, ci.program, ci.is_drum, patch, spec_])
        spec["source"] = {"midi": file_sha256(cfg.root / str(clip.midi))}
        spec["parts"] = parts
        spec["render"] = [r.sample_rate, r.tail_s, r.trim_db, r.soundfont_reverb, r.soundfont_chorus]
        spec["mix"] = [m.stem_lufs, m.mode, m.silence_lufs]
    else:
        spec["source"] = {"audio": file_sha256(cfg.root / clip.audio)}
    return digest(spec)


def _render(job: _Item, work: _Work) -> tuple[bytes, dict[str, Any], bytes | None]:
    """Make the variant's audio (a cache miss): (WAV bytes, measurements, MIDI bytes)."""
    clip, cfg, plan = job.clip, job.config, job.plan
    assert plan is not None
    sr, d = clip.sample_rate, plan.draw
    rendered = 0
    if work.note_level:
        if cfg.render.sample_rate != sr:
            raise ItemError(f"clip is {sr} Hz but render.sample_rate is {cfg.render.sample_rate}")
        assert work.pm is not None
        patches = dict(d.patches)
        parts = [Part(ci, patches.get(ci.track_id, ci.patch)) for ci in clip.instruments]
        frames = round(clip.seconds_total / work.ratio * sr)
        stems = render_parts(work.pm, parts, cfg.render, frames)
        rendered = sum(s is not None for s in stems)
        if clip.kind == "stem":
            if stems[0] is None:
                raise ItemError(f"{clip.instruments[0].track_id} has no notes in the span")
            x = stems[0]
        else:
            x = mix_parts(stems, sr, cfg.mix)
    else:
        src = cfg.root / clip.audio
        if not src.is_file():
            raise ItemError(f"clip audio missing: {clip.audio}")
        x, file_sr = sf.read(str(src), dtype="float32", always_2d=True)
        if file_sr != sr:
            raise ItemError(f"clip audio is {file_sr} Hz, its record says {sr}")
        x = stereo(x)
    level_in = integrated_lufs(x, sr)
    if work.note_level:  # a re-render the mix stage would leave out as silent
        _check_audible(level_in, "as re-rendered", cfg.mix.silence_lufs, "mix.silence_lufs")
    for t in work.transforms:
        if t.name == "pitch_shift_audio":
            x = pitch_shift(x, sr, int(t.kwargs["semitones"]))  # type: ignore[call-overload]
        elif t.name == "time_stretch_audio":
            x = time_stretch(x, sr, work.ratio, round(len(x) / work.ratio))
    if d.chain:
        x = apply_chain(x, sr, d.chain, d.bpm if d.bpm is not None else source_bpm(clip))
    # The processing's gain (FX, pitch shift, stretch) applied to the source clip's level: how loud the
    # variant is before the final normalisation would hide it.
    level = clip.loudness_lufs + integrated_lufs(x, sr) - level_in
    _check_audible(level, "after processing, at its source clip's level", cfg.silence_lufs)
    y, loudness = finish(x, sr, clip.loudness_lufs, cfg.mix)
    wav = _wav_bytes(y, sr)
    q, _ = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)  # measure what the file holds
    meta: dict[str, Any] = {
        "frames": len(y),
        "loudness_lufs": round(loudness, 3),
        "level_lufs": round(level, 3),
        "timbre_features": timbre_values(q, sr),
        "rendered_parts": rendered,
        "transpose": work.report,
    }
    mid = None
    if work.pm is not None:
        meta["notation"] = {ci.track_id: notation_of(work.pm, ci.midi_track) for ci in clip.instruments}
        mid = instruments_to_midi(work.pm, work.pm.instruments)
    return wav, meta, mid


def _check_audible(lufs: float, where: str, silence_lufs: float, param: str = "clip.silence_lufs") -> None:
    if not lufs > silence_lufs:  # also -inf and NaN
        raise NearSilent(f"near-silent: {lufs:.1f} LUFS {where} <= {param} {silence_lufs:g}")


def _variant(job: _Item) -> ItemResult:
    clip, cfg, plan = job.clip, job.config, job.plan
    assert plan is not None
    work = _prepare(job)
    key = _cache_key(job, work)
    cache = VariantCache(cfg.cache_dir)
    entry: CacheEntry | None = cache.get(key)
    cached = entry is not None
    if entry is None:
        entry = cache.put(key, *_render(job, work))
    # Checked on the entry too: one cached under a lower clip.silence_lufs is held to today's.
    _check_audible(float(entry.meta["level_lufs"]), "after processing, at its source clip's level", cfg.silence_lufs)
    _check_audible(float(entry.meta["loudness_lufs"]), "after the final limiter", cfg.silence_lufs)
    base = item_base(cfg.dataset_dir, clip, plan.suffix, ORIGINAL)
    _copy(entry.wav, base.with_suffix(".wav"))
    midi_rel = clip.midi
    if entry.mid is not None:
        _copy(entry.mid, base.with_suffix(".mid"))
        midi_rel = _rel(cfg, base.with_suffix(".mid"))
    variant = _labelled(job, work, entry.meta, key)
    variant = variant.model_copy(update={
        "audio": _rel(cfg, base.with_suffix(".wav")),
        "sidecar": _rel(cfg, base.with_suffix(".json")),
        "midi": midi_rel,
    })  # fmt: skip
    return ItemResult(variant, cached=cached, rendered_parts=0 if cached else int(entry.meta["rendered_parts"]))


def _labelled(job: _Item, work: _Work, meta: dict[str, Any], key: str) -> Variant:
    """The variant's record: the source clip's fields, each recomputed for what was done."""
    clip, cfg, plan = job.clip, job.config, job.plan
    assert plan is not None
    d, p = plan.draw, cfg.augment
    patches = dict(d.patches)
    notation = meta.get("notation") or {}
    chain_distorts = distorts(d.chain)
    instruments = []
    for ci in clip.instruments:
        if ci.track_id in notation:
            ci = renotate(ci, notation[ci.track_id])
        elif d.semitones is not None and not ci.is_drum and ci.notation is not None:
            # Pitch-shifted audio without MIDI to describe: the register is no longer known.
            ci = ci.model_copy(update={"notation": ci.notation.model_copy(update={"pitch_register": None})})
        if ci.track_id in patches:
            ci = repatch(ci, patches[ci.track_id], cfg.render)
        if chain_distorts:  # a clean guitar through distortion is called clean no more
            ci = through_distortion(ci)
        instruments.append(ci)
    features = meta["timbre_features"]
    # A distorting effect in the chain, or a stem of a patch distorted by design: never 'clean'.
    distorted = chain_distorts or (clip.kind == "stem" and distorted_by_design(instruments[0], cfg.render))
    sr = clip.sample_rate
    keeps_character = {t.axis for t in work.transforms} <= {"key"}
    fields = clip.model_dump(exclude={"id", "schema_version", "audio", "sidecar", "midi", "fx"})
    fields.update(
        key=transpose_key(clip.key, d.semitones) if d.semitones is not None else clip.key,
        bpm=round(d.bpm, 4) if d.bpm is not None else clip.bpm,
        seconds_start=round(clip.seconds_start / work.ratio, 6),
        seconds_total=round(int(meta["frames"]) / sr, 6),
        padded_s=round(clip.padded_s / work.ratio, 6),
        loudness_lufs=float(meta["loudness_lufs"]),
        instruments=instruments,
        timbre=timbre_adjectives(features, cfg.thresholds, distorted),
        timbre_features=features,
        energy=clip.energy if keeps_character else None,
        acousticness=clip.acousticness if keeps_character else None,
    )
    if d.semitones is not None:
        fields["key_evidence"] = moved_key_evidence(clip.key_evidence, d.semitones)
    if d.bpm is not None:
        fields["tempo_evidence"] = scaled_tempo_evidence(clip.tempo_evidence, work.ratio)
    return Variant(
        id=plan.variant_id, audio=clip.audio, sidecar=clip.sidecar, midi=clip.midi,
        fx=fx_labels(list(d.chain), p.fx.wet_dry_labels), source_clip=clip.id, suffix=plan.suffix,
        method="midi" if work.note_level else "audio", transforms=work.transforms, phrase=job.phrase,
        cache_key=key, **fields,
    )  # fmt: skip
