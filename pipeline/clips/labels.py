"""Key, tempo and meter of one clip's span, from evidence, and what its prompts may state.

Every estimate is kept in the sidecar; a params policy decides what is stated.
Real MIDI carries default or wrong key signatures, modulates, ramps its tempo
and changes meter mid-phrase, so nothing is taken from the song as a whole:
- key: the notes sounding in the span (duration- and bass-weighted profile; the
  music around it picks between relative major and minor), confirmed by the
  clip's own audio or by the key signature in effect; never for drums-only or
  near-empty spans;
- tempo: the MIDI's tempo map over the span (exact, never rounded from audio);
  no BPM when it varies by more than a tolerance; the felt level (half time,
  the dotted quarter of 6/8) is the one the clip's audio tempo agrees with;
- meter: stated only when every bar of the clip has the same one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pretty_midi

from pipeline.analysis.key import KeyLabel, audio_key, relation
from pipeline.analysis.tempo import COMPOUND_NUMERATORS, tempo_backend
from pipeline.midi.keyfind import (
    KeyEstimate,
    count_pitched,
    foreign_share,
    key_scores,
    profile_key,
    relative_tonic,
    retained_share,
    span_profile,
)
from pipeline.midi.keys import NOTE_NAMES
from pipeline.params import ClipLabelParams
from pipeline.records import KeyEvidence, KeySignature, MeterEvidence, TempoChange, TempoEvidence

SPAN_EPS_S = 1e-4
PITCH_SET = ("exact", "relative")  # keys with the same seven notes
# Metrical levels a listener may tap, relative to the quarter note; the order breaks ties.
FELT_FACTORS: tuple[float, ...] = (1.0, 0.5, 2.0, 2 / 3, 1.5, 1 / 3, 3.0)


@dataclass(frozen=True)
class SpanLabels:
    key: str | None
    bpm: float | None
    time_signature: str | None
    key_evidence: KeyEvidence
    tempo_evidence: TempoEvidence
    meter_evidence: MeterEvidence

    def sources(self) -> dict[str, str]:
        k = self.key_evidence
        key = "none" if self.key is None else "+".join(
            name for name, v in (("notes", k.notes), ("audio", k.audio), ("signature", k.signature)) if v == self.key
        )  # fmt: skip
        return {"key": key, "bpm": "midi" if self.bpm is not None else "none"}


# -- tempo ---------------------------------------------------------------------------


def span_tempi(tempo_map: Sequence[TempoChange], start_s: float, end_s: float) -> tuple[float, float, float]:
    """(duration-weighted, slowest, fastest) quarter-note BPM in effect over [start, end)."""
    changes = sorted((c.time_s, c.tempo_bpm) for c in tempo_map)
    before = [bpm for t, bpm in changes if t <= start_s + SPAN_EPS_S]
    segments = [(start_s, before[-1] if before else changes[0][1])]
    segments += [(t, bpm) for t, bpm in changes if start_s + SPAN_EPS_S < t < end_s - SPAN_EPS_S]
    total = 0.0
    for i, (t, bpm) in enumerate(segments):
        stop = segments[i + 1][0] if i + 1 < len(segments) else end_s
        total += max(0.0, stop - t) * bpm
    bpms = [bpm for _, bpm in segments]
    weighted = total / (end_s - start_s) if end_s > start_s else bpms[0]
    return round(weighted, 3), min(bpms), max(bpms)


def default_factor(meter: str | None) -> float:
    """The beat of the notation: the dotted quarter in compound meters, else the quarter."""
    if meter is None:
        return 1.0
    num, den = (int(v) for v in meter.split("/"))
    return 2 / 3 if den == 8 and num in COMPOUND_NUMERATORS else 1.0


def felt_level(notated_bpm: float, meter: str | None, audio_bpm: Mapping[str, float], tolerance: float):
    """(factor, source): the metrical level most audio estimates agree with, else the meter's beat."""
    default = default_factor(meter)
    best: tuple[int, int, int] | None = None
    choice = default
    for order, f in enumerate(FELT_FACTORS):
        votes = sum(abs(b - notated_bpm * f) <= tolerance * notated_bpm * f for b in audio_bpm.values())
        rank = (votes, f == default, -order)
        if votes and (best is None or rank > best):
            best, choice = rank, f
    return (choice, "audio") if best is not None else (default, "meter")


def clip_audio_tempo(mono: np.ndarray, sample_rate: int, p: ClipLabelParams) -> dict[str, float]:
    if p.audio_tempo == "none" or len(mono) < sample_rate * 4:
        return {}
    est = tempo_backend("essentia", None, p.audio_tempo_method).estimate(mono, sample_rate)
    return {f"essentia:{p.audio_tempo_method}": est.bpm} if est.bpm > 0 else {}


def tempo_labels(
    tempo_map: Sequence[TempoChange], start_s: float, end_s: float, meter: str | None,
    audio_bpm: Mapping[str, float], p: ClipLabelParams,
) -> tuple[float | None, TempoEvidence]:  # fmt: skip
    weighted, slowest, fastest = span_tempi(tempo_map, start_s, end_s)
    factor, source = felt_level(weighted, meter, audio_bpm, p.audio_tempo_tolerance)
    steady = fastest / slowest - 1 <= p.tempo_tolerance + 1e-9
    withheld = None if steady else f"tempo varies {slowest:g}-{fastest:g} BPM inside the clip"
    felt = round(weighted * factor, 3)
    stated = None if withheld else (weighted if p.bpm_level == "notated" else felt)
    evidence = TempoEvidence(
        notated_bpm=weighted, min_bpm=round(slowest, 3), max_bpm=round(fastest, 3), steady=steady, felt_bpm=felt,
        felt_factor=round(factor, 6), felt_source=source, audio_bpm=dict(audio_bpm), withheld=withheld,
    )  # fmt: skip
    return stated, evidence


# -- meter ---------------------------------------------------------------------------


def meter_labels(meters: Sequence[str]) -> tuple[str | None, MeterEvidence]:
    distinct = list(dict.fromkeys(meters))
    if len(distinct) == 1:
        return distinct[0], MeterEvidence(meters=distinct, withheld=None)
    return None, MeterEvidence(meters=distinct, withheld=f"meter changes inside the clip ({' -> '.join(distinct)})")


# -- key -----------------------------------------------------------------------------


def span_signature(signatures: Sequence[KeySignature], start_s: float, end_s: float) -> str | None:
    """The key signature in effect over the whole span; None without one or when it changes inside."""
    if not signatures:
        return None
    if any(start_s + SPAN_EPS_S < k.time_s < end_s - SPAN_EPS_S for k in signatures):
        return None
    now = [k for k in signatures if k.time_s <= start_s + SPAN_EPS_S] or list(signatures[:1])
    return f"{now[-1].tonic} {now[-1].scale}"


def _label(est: KeyEstimate | None) -> KeyLabel | None:
    return KeyLabel(NOTE_NAMES[est.tonic_pc], est.scale) if est else None


def song_notes_key(instruments: Sequence[pretty_midi.Instrument], p: ClipLabelParams) -> KeyLabel | None:
    """The key of all of a song's notes (the prior each clip's own notes may overrule); its first
    and last bass pick between relative keys."""
    est = profile_key(span_profile(instruments, bass_weight=p.bass_weight), p.key_profile)
    return _label(relative_tonic(est, instruments)) if est is not None else None


def tonicizes(profile: np.ndarray, song_key: KeyLabel, span_key: KeyEstimate, p: ClipLabelParams) -> bool:
    """The span borrows its best key's notes inside the song's key rather than modulating to it: more
    than clip.labels.tonicization_share of its note time stays on song-key pitches that key lacks (a
    chorale's phrase cadencing on ii or V keeps the home key's 4th or tonic beside the new leading tone;
    a modulated section drops them). A tonicization points to another tonic: the parallel key (C minor
    in a C major song) is mode mixture, left to clip.labels.foreign_share."""
    if span_key.tonic_pc == song_key.pc:
        return False
    kept = retained_share(profile, (song_key.pc, song_key.scale), (span_key.tonic_pc, span_key.scale))
    return kept > p.tonicization_share


@dataclass(frozen=True)
class NotesKey:
    key: KeyLabel | None  # what the notes say, the song's key weighed in; None: the span is too short to say
    margin: float  # the span's best key's correlation margin over its runner-up
    decided_by: KeyLabel | None  # the song's or surrounding key that decided it
    own: KeyLabel | None  # the span's own key (no song prior): a modulation, when the audio agrees
    withheld: str | None = None  # why the notes name no key although the span has notes


def notes_key(
    instruments: Sequence[pretty_midi.Instrument], start_s: float, end_s: float, p: ClipLabelParams,
    context: Sequence[pretty_midi.Instrument] | None = None, song_key: KeyLabel | None = None,
) -> NotesKey:  # fmt: skip
    """The key of the span's notes.

    A 20 s span often leaves its tonic open (C major or A minor, or a mode-like
    pull to a neighbour), so the song's key stands while the span's best key is
    its relative or the song's key fits the span's notes nearly as well (within
    clip.labels.song_key_margin) and either few of the notes lie outside it
    (clip.labels.foreign_share) or the span only tonicizes its best key: it keeps
    the song's pitches that key lacks (clip.labels.tonicization_share). A span
    that tonicizes a key the song's key fits poorly names none (neither key is
    sure), nor does one shorter than clip.labels.min_key_span_s that leaves the
    song's key. Otherwise, when the span's best key is the relative of the music
    around it (clip.labels.context_s either side), that surrounding key wins.
    """
    profile = span_profile(instruments, start_s, end_s, p.bass_weight)
    scores = key_scores(profile, p.key_profile)
    est = profile_key(profile, p.key_profile)
    if est is None:
        return NotesKey(None, 0.0, None, None)
    own = best = _label(est)
    around = None
    if context is not None and p.context_s > 0:
        c0, c1 = start_s - p.context_s, end_s + p.context_s
        around = _label(profile_key(span_profile(context, c0, c1, p.bass_weight), p.key_profile))
        if around and relation(best, around) == "relative":
            own = around
    if song_key is None:
        return NotesKey(own, est.margin, around if own == around else None, own)
    fits = scores[(song_key.pc, song_key.scale)] >= est.correlation - p.song_key_margin
    borrows = tonicizes(profile, song_key, est, p)
    if relation(best, song_key) in ("exact", "relative") or (
        fits and (foreign_share(profile, song_key.pc, song_key.scale) <= p.foreign_share or borrows)
    ):
        return NotesKey(song_key, est.margin, song_key, own)
    if end_s - start_s < p.min_key_span_s:
        why = f"a {end_s - start_s:.1f} s span (< clip.labels.min_key_span_s) whose notes leave the song's key"
        return NotesKey(None, est.margin, song_key, own, f"{why} {song_key.label}")
    if borrows:
        why = f"notes tonicize {best.label} inside the song's key {song_key.label}, which fits them poorly"
        return NotesKey(None, est.margin, song_key, own, f"{why} (clip.labels.tonicization_share)")
    return NotesKey(own, est.margin, around if own == around else None, own)


def key_labels(
    instruments: Sequence[pretty_midi.Instrument], start_s: float, end_s: float, signature: str | None,
    mono: np.ndarray | None, sample_rate: int, p: ClipLabelParams,
    context: Sequence[pretty_midi.Instrument] | None = None, song_key: KeyLabel | None = None,
    song_audio: KeyLabel | None = None,
) -> tuple[str | None, KeyEvidence]:  # fmt: skip
    pitched = count_pitched(instruments, start_s, end_s)
    if pitched < p.min_tonal_notes:
        why = "drums only" if pitched == 0 else f"only {pitched} pitched notes (< clip.labels.min_tonal_notes)"
        return None, KeyEvidence(
            tonal=False, notes=None, notes_confidence=None, context=None, signature=signature, audio=None,
            audio_strength=None, song_audio=None, agreement=None, withheld=f"not tonal: {why}",
        )  # fmt: skip
    nk = notes_key(instruments, start_s, end_s, p, context, song_key)
    notes, margin, around = nk.key, nk.margin, nk.decided_by
    audio = audio_key(mono, sample_rate, p.audio_key_profile) if mono is not None and len(mono) else None

    agreement = relation(audio, notes) if audio and notes else None
    # the clip keeps the song's key, which the whole song's audio confirms (a longer, surer estimate)
    by_song = (
        notes is not None and song_key is not None and song_audio is not None and notes.label == song_key.label
        and _confirms(song_audio, song_key, p)
    )  # fmt: skip
    stated, withheld = _policy(notes.label if notes else None, margin, audio, signature, p, by_song)
    if nk.withheld and p.key_policy != "audio":
        withheld = nk.withheld
    return stated, KeyEvidence(
        tonal=True, notes=notes.label if notes else None, notes_confidence=margin if notes else None,
        context=around.label if around else None, signature=signature,
        song_audio=song_audio.label if song_audio else None, audio=audio.label if audio else None,
        audio_strength=audio.strength if audio else None, agreement=agreement, withheld=withheld,
    )  # fmt: skip


def _confirms(audio: KeyLabel, key: KeyLabel, p: ClipLabelParams) -> bool:
    return relation(audio, key) in (("exact",) if p.audio_agreement == "exact" else PITCH_SET)


def _policy(
    notes: str | None, margin: float, audio: KeyLabel | None, signature: str | None, p: ClipLabelParams,
    by_song: bool = False,
) -> tuple[str | None, str | None]:  # fmt: skip
    heard = audio.label if audio else None
    if p.key_policy == "audio":
        return (heard, None) if heard else (None, "no audio key")
    if p.key_policy == "signature":
        return (signature, None) if signature else (None, "no key signature over the whole clip")
    if notes is None:
        return None, "no key from the notes"
    if margin < p.min_key_confidence:
        return None, f"notes' key ambiguous (margin {margin:.3f} < clip.labels.min_key_confidence)"
    confirmed = (
        notes == signature or by_song or (audio is not None and _confirms(audio, KeyLabel(*notes.split(" ")), p))
    )
    if p.key_policy == "notes" or confirmed:
        return notes, None
    return None, f"evidence disagrees: notes {notes}, audio {heard or 'none'}, signature {signature or 'none'}"
