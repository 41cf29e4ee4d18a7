"""Instrument words a person writes, mapped to the GM vocabulary the prompts use.

A word is a GM instrument name ("Acoustic Grand Piano"), a common word from the table
below ("piano", "sax", "upright bass", "drums"), or a GM family ("Brass"). Matching ignores
case, spaces and hyphens. Anything else is unknown: a warning names it and the file,
and the word stays out of the labels (a prompt never states it).
"""

from __future__ import annotations

import re

import pretty_midi

from pipeline.records import RecordedInstrument

_SEP = re.compile(r"[\s_\-()]+")

# Common words -> (GM program or None, family). None: the word names a family only.
COMMON: dict[str, tuple[int | None, str]] = {
    "piano": (0, "Piano"), "grand piano": (0, "Piano"), "upright piano": (0, "Piano"),
    "electric piano": (4, "Piano"), "rhodes": (4, "Piano"), "wurlitzer": (4, "Piano"), "keys": (None, "Piano"),
    "harpsichord": (6, "Piano"), "clavinet": (7, "Piano"),
    "celesta": (8, "Chromatic Percussion"), "glockenspiel": (9, "Chromatic Percussion"),
    "vibraphone": (11, "Chromatic Percussion"), "vibes": (11, "Chromatic Percussion"),
    "marimba": (12, "Chromatic Percussion"), "xylophone": (13, "Chromatic Percussion"),
    "bells": (14, "Chromatic Percussion"),
    "organ": (None, "Organ"), "hammond": (16, "Organ"), "church organ": (19, "Organ"),
    "accordion": (21, "Organ"), "harmonica": (22, "Organ"),
    "guitar": (None, "Guitar"), "acoustic guitar": (25, "Guitar"), "classical guitar": (24, "Guitar"),
    "nylon guitar": (24, "Guitar"), "electric guitar": (27, "Guitar"), "distorted guitar": (30, "Guitar"),
    "bass": (None, "Bass"), "bass guitar": (33, "Bass"), "electric bass": (33, "Bass"),
    "double bass": (32, "Bass"), "upright bass": (32, "Bass"), "synth bass": (38, "Bass"),
    "strings": (None, "Strings"), "violin": (40, "Strings"), "viola": (41, "Strings"), "cello": (42, "Strings"),
    "contrabass": (43, "Strings"), "harp": (46, "Strings"), "timpani": (47, "Strings"),
    "string section": (48, "Ensemble"), "string ensemble": (48, "Ensemble"), "choir": (52, "Ensemble"),
    "brass": (None, "Brass"), "trumpet": (56, "Brass"), "trombone": (57, "Brass"), "tuba": (58, "Brass"),
    "horn": (60, "Brass"), "french horn": (60, "Brass"), "brass section": (61, "Brass"),
    "sax": (None, "Reed"), "saxophone": (None, "Reed"), "alto sax": (65, "Reed"), "tenor sax": (66, "Reed"),
    "oboe": (68, "Reed"), "bassoon": (70, "Reed"), "clarinet": (71, "Reed"),
    "flute": (73, "Pipe"), "piccolo": (72, "Pipe"), "recorder": (74, "Pipe"), "pan flute": (75, "Pipe"),
    "synth": (None, "Synth Lead"), "synth lead": (None, "Synth Lead"), "lead synth": (None, "Synth Lead"),
    "pad": (None, "Synth Pad"), "synth pad": (None, "Synth Pad"),
    "sitar": (104, "Ethnic"), "banjo": (105, "Ethnic"), "koto": (107, "Ethnic"), "kalimba": (108, "Ethnic"),
    "bagpipe": (109, "Ethnic"), "fiddle": (110, "Ethnic"),
    "steel drums": (114, "Percussive"), "taiko": (116, "Percussive"),
    "drums": (None, "Drums"), "drum kit": (None, "Drums"), "drum set": (None, "Drums"),
    "percussion": (None, "Drums"), "kit": (None, "Drums"),
}  # fmt: skip


def _norm(word: str) -> str:
    return _SEP.sub(" ", word.lower()).strip()


_GM_NAMES = {_norm(name): p for p, name in enumerate(pretty_midi.constants.INSTRUMENT_MAP)}
_FAMILIES = {_norm(f): f for f in (*pretty_midi.constants.INSTRUMENT_CLASSES, "Drums")}


def map_instrument(word: str) -> RecordedInstrument | None:
    """The GM instrument or family a word names; None when it names neither."""
    key = _norm(word)
    if key in _GM_NAMES:
        p = _GM_NAMES[key]
        return RecordedInstrument(word=word, name=pretty_midi.program_to_instrument_name(p),
                                  family=str(pretty_midi.program_to_instrument_class(p)))  # fmt: skip
    if key.endswith("s") and key[:-1] in COMMON and key not in COMMON:  # plurals: "violins", "pianos"
        key = key[:-1]
    if key in COMMON:
        program, family = COMMON[key]
        name = pretty_midi.program_to_instrument_name(program) if program is not None else None
        return RecordedInstrument(word=word, name=name, family=family)
    if key in _FAMILIES:
        return RecordedInstrument(word=word, name=None, family=_FAMILIES[key])
    return None
