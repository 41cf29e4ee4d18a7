"""Labels of a variant, recomputed from what was done to it: key, instruments and patches, notation, timbre.

Key and tempo follow exactly from the transform (MIDI truth moved by a known
amount), and so do their evidence records (each estimate moved by the same
amount); notation is described again from the transformed notes; timbre is measured
on the variant's own audio; FX labels come from the chain (pipeline/augment/fx.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pretty_midi

from pipeline.analysis.notation import describe_notation
from pipeline.analysis.tag import DISTORTED_GM_PRESETS, notation_info
from pipeline.midi.gm import family, instrument_name, subfamily
from pipeline.midi.keys import NOTE_NAMES, tonic_pc
from pipeline.params import RenderParams
from pipeline.records import ClipInstrument, KeyEvidence, NotationInfo, TempoEvidence


def transpose_key(key: str | None, semitones: int) -> str | None:
    """'F# minor' moved by +2 -> 'G# minor' spelled as essentia does ('Ab minor')."""
    if key is None:
        return None
    tonic, scale = key.split(" ")
    return f"{NOTE_NAMES[(tonic_pc(tonic) + semitones) % 12]} {scale}"


def moved_key_evidence(ev: KeyEvidence, semitones: int) -> KeyEvidence:
    """The source clip's key estimates moved by the transposition, as its key label is."""
    return ev.model_copy(update={f: transpose_key(getattr(ev, f), semitones) for f in ("notes", "signature", "audio")})


def scaled_tempo_evidence(ev: TempoEvidence, ratio: float) -> TempoEvidence:
    """The source clip's tempo evidence at the variant's tempo: every tempo times `ratio` (new / old)."""

    def scaled(bpm: float | None) -> float | None:
        return round(bpm * ratio, 3) if bpm is not None else None

    return ev.model_copy(update={
        "notated_bpm": scaled(ev.notated_bpm), "min_bpm": scaled(ev.min_bpm),
        "max_bpm": scaled(ev.max_bpm), "felt_bpm": scaled(ev.felt_bpm),
        "audio_bpm": {name: round(bpm * ratio, 3) for name, bpm in ev.audio_bpm.items()},
    })  # fmt: skip


def sounding_program(ci: ClipInstrument, patch: str, render: RenderParams) -> int:
    """The GM program (or kit) a patch actually plays the instrument with."""
    spec = render.patches[patch]
    if spec.backend == "soundfont" and spec.preset is not None:
        return int(spec.preset)
    if ci.program is None:
        raise ValueError(f"{ci.track_id} is a recording's instrument: no patch plays it")
    return ci.program


def repatch(ci: ClipInstrument, patch: str, render: RenderParams) -> ClipInstrument:
    """The instrument as played by `patch`: its name and family follow the preset that sounds.

    A VST3 patch keeps the GM description (nothing more is known about the plugin's sound).
    """
    program = sounding_program(ci, patch, render)
    return ci.model_copy(
        update={
            "patch": patch,
            "program": program,
            "name": instrument_name(program, ci.is_drum),
            "family": family(program, ci.is_drum),
            "subfamily": subfamily(program, ci.is_drum),
        }
    )


def distorted_by_design(ci: ClipInstrument, render: RenderParams) -> bool:
    """A GM SoundFont preset that is distorted by design (overdriven guitar, ...), as the tag stage knows them."""
    spec = render.patches.get(ci.patch)
    if spec is None or spec.backend != "soundfont" or ci.is_drum or spec.bank not in (None, 0):
        return False
    return (spec.preset if spec.preset is not None else ci.program) in DISTORTED_GM_PRESETS


_CLEAN_QUALIFIER = " (clean)"  # GM 27 'Electric Guitar (clean)'
_CLEAN_PREFIX = "clean "  # GM subfamily 'clean electric guitar' (GM 26-28)


def through_distortion(ci: ClipInstrument) -> ClipInstrument:
    """The instrument as a distorting effect leaves it: no longer named clean.

    GM's 'Electric Guitar (clean)' becomes 'Electric Guitar' and its subfamily 'clean electric
    guitar' the one GM gives overdriven and distortion guitars, 'distorted electric guitar'
    (the program, what the synth played, stays). Other instruments are returned as they are.
    """
    name = ci.name.removesuffix(_CLEAN_QUALIFIER)
    sub = ci.subfamily
    if sub.startswith(_CLEAN_PREFIX):
        sub = "distorted " + sub.removeprefix(_CLEAN_PREFIX)
    if (name, sub) == (ci.name, ci.subfamily):
        return ci
    return ci.model_copy(update={"name": name, "subfamily": sub})


def notation_of(pm: pretty_midi.PrettyMIDI, track: int) -> dict[str, Any] | None:
    """The NotationInfo fields of one instrument of the (transformed) span, None for an empty one."""
    if track >= len(pm.instruments):
        return None
    return notation_info(describe_notation(pm.instruments[track], pm)).model_dump()


def renotate(ci: ClipInstrument, fields: Mapping[str, Any] | None) -> ClipInstrument:
    if fields is None:
        return ci
    return ci.model_copy(update={"notation": NotationInfo(**fields)})
