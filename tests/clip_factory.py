"""Build real `Clip` records for tests: GM names, families and sub-families from pipeline/midi/gm.py,
notation and timbre terms from the analysis vocabularies."""

from __future__ import annotations

from typing import Any

from pipeline.midi import gm
from pipeline.records import Clip, ClipInstrument, KeyEvidence, MeterEvidence, NotationInfo, TempoEvidence

SONG = "test-band__test-song__abc123"

_ROLE_BY_FAMILY = {"Bass": "bassline", "Drums": "drums", "Piano": "chord progression", "Synth Pad": "sustained chords"}


def notation(
    role: str | None = "melody",
    speed: str | None = "moderate",
    density: str | None = "moderate",
    contour: str | None = None,
    register: str | None = "mid",
) -> NotationInfo:
    return NotationInfo(
        role=role,
        notes_per_second=2.0,
        notes_per_beat=1.0,
        speed=speed,
        density=density,
        contour=contour,
        pitch_register=register,
        pitch_range_semitones=12,
        polyphony=1 if role in ("melody", "bassline", "arpeggio") else 3,
    )


def instrument(program: int, is_drum: bool = False, index: int = 0, **notation_kw: Any) -> ClipInstrument:
    family = gm.family(program, is_drum)
    kw = {"role": _ROLE_BY_FAMILY.get(family, "melody"), "register": None if is_drum else "mid"}
    if kw["role"] in ("melody", "bassline"):
        kw["contour"] = "wavy"
    kw.update(notation_kw)
    return ClipInstrument(
        track_id=f"{SONG}/t{index:02d}",
        midi_track=index,
        name=gm.instrument_name(program, is_drum),
        family=family,
        subfamily=gm.subfamily(program, is_drum),
        program=program,
        is_drum=is_drum,
        patch="gm-kit" if is_drum else "gm",
        alternatives=["gm-kit" if is_drum else "gm"],
        notation=notation(**kw),
    )


def evidence(key: str | None, bpm: float | None, time_signature: str | None) -> dict[str, Any]:
    """Evidence fields of a clip whose every estimate agrees with its stated labels."""
    return {
        "key_evidence": KeyEvidence(
            tonal=key is not None, notes=key, notes_confidence=0.1 if key else None, context=key, signature=key,
            audio=key, audio_strength=0.8 if key else None, song_audio=key, agreement="exact" if key else None,
            withheld=None if key else "not tonal: drums only",
        ),
        "tempo_evidence": TempoEvidence(
            notated_bpm=bpm or 120.0, min_bpm=bpm or 100.0, max_bpm=bpm or 140.0, steady=bpm is not None,
            felt_bpm=bpm or 120.0, felt_factor=1.0, felt_source="audio", audio_bpm={"essentia:degara": bpm or 120.0},
            withheld=None if bpm else "tempo varies 100-140 BPM inside the clip",
        ),
        "meter_evidence": MeterEvidence(
            meters=[time_signature] if time_signature else ["2/4", "4/4"],
            withheld=None if time_signature else "meter changes inside the clip (2/4 -> 4/4)",
        ),
    }  # fmt: skip


def make_clip(
    n: int = 0,
    programs: tuple[tuple[int, bool], ...] = ((2, False), (32, False), (0, True)),
    key: str | None = "A minor",
    bpm: float | None = 120.0,
    bars: int = 8,
    time_signature: str | None = "4/4",
    **fields: Any,
) -> Clip:
    """A mix clip (or a stem clip when one program is given and kind='stem')."""
    instruments = fields.pop("instruments", None) or [instrument(p, d, index=i) for i, (p, d) in enumerate(programs)]
    kind = fields.pop("kind", "mix" if len(instruments) > 1 else "stem")
    cid = f"{SONG}/c{n:03d}" + (f"-t{instruments[0].midi_track:02d}" if kind == "stem" else "")
    base = {
        "id": cid,
        "song_id": SONG,
        "artist": "Test Band",
        "title": "Test Song",
        "kind": kind,
        "split": "train",
        "audio": f"data/clip/audio/{cid}.wav",
        "sidecar": f"data/clip/audio/{cid}.json",
        "midi": f"data/clip/midi/{cid}.mid",
        "section": 0,
        "section_source": "midi",
        "bar_start": n * bars,
        "bars": bars,
        "padded_s": 0.0,
        "loopable": True,
        "seconds_start": n * 16.0,
        "seconds_total": 16.0,
        "sample_rate": 44100,
        "loudness_lufs": -14.0,
        "instruments": instruments,
        "key": key,
        "bpm": bpm,
        "time_signature": time_signature,
        "genre_tags": [],
        "timbre": ["warm", "bright"],
        "timbre_features": {"centroid_hz": 1800.0},
        "label_sources": {"key": "notes+audio" if key else "none", "bpm": "midi" if bpm else "none"},
    }
    base.update(fields)
    for k, v in evidence(base["key"], base["bpm"], base["time_signature"]).items():
        base.setdefault(k, v)
    return Clip(**base)


# (programs, key, bpm) of sample-like clips: mixes and stems of several GM families, keys and tempi.
_VARIED: tuple[tuple[tuple[tuple[int, bool], ...], str | None, float], ...] = (
    (((0, False), (32, False), (0, True)), "A minor", 120.0),
    (((48, False),), "D major", 72.0),
    (((4, False), (33, False)), "F# minor", 96.0),
    (((0, True),), None, 140.0),
    (((25, False), (0, True)), "G major", 110.0),
    (((89, False), (81, False), (38, False)), "C minor", 128.0),
    (((56, False), (61, False), (0, True)), "Bb major", 104.0),
    (((24, False),), "E minor", 88.0),
)


def varied_clips(n: int) -> list[Clip]:
    """n clips cycling through _VARIED (mixes and stems; with and without a key)."""
    out = []
    for i in range(n):
        programs, key, bpm = _VARIED[i % len(_VARIED)]
        out.append(make_clip(i, programs=programs, key=key, bpm=bpm, bars=(4, 8, 16)[i % 3]))
    return out
