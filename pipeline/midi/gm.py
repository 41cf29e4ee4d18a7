"""General MIDI names, families and a finer sub-family for prompts and patch maps.

Families are pretty_midi's 16 GM classes plus "Drums"; sub-families group programs
that sound alike (e.g. programs 33-35 are all "electric bass").
"""

from __future__ import annotations

import pretty_midi

DRUMS_FAMILY = "Drums"
# GM families as pretty_midi names them, plus drum tracks.
GM_FAMILIES: tuple[str, ...] = (*pretty_midi.constants.INSTRUMENT_CLASSES, DRUMS_FAMILY)
# Drum kit programs (GS/GM2, bank 128) that the patch rules must cover.
GM_DRUM_KITS = (0, 8, 16, 24, 25, 32, 40, 48, 56)


def gm_family(program: int, is_drum: bool) -> str:
    return DRUMS_FAMILY if is_drum else str(pretty_midi.program_to_instrument_class(int(program)))


# (first program, last program, sub-family), covering 0-127 without gaps.
_SUBFAMILIES: tuple[tuple[int, int, str], ...] = (
    (0, 1, "acoustic piano"),
    (2, 2, "electric piano"),
    (3, 3, "acoustic piano"),
    (4, 5, "electric piano"),
    (6, 6, "harpsichord"),
    (7, 7, "clavinet"),
    (8, 10, "bells"),
    (11, 13, "mallets"),
    (14, 14, "bells"),
    (15, 15, "dulcimer"),
    (16, 18, "electric organ"),
    (19, 19, "pipe organ"),
    (20, 20, "reed organ"),
    (21, 21, "accordion"),
    (22, 22, "harmonica"),
    (23, 23, "accordion"),
    (24, 25, "acoustic guitar"),
    (26, 28, "clean electric guitar"),
    (29, 30, "distorted electric guitar"),
    (31, 31, "guitar harmonics"),
    (32, 32, "acoustic bass"),
    (33, 35, "electric bass"),
    (36, 37, "slap bass"),
    (38, 39, "synth bass"),
    (40, 43, "solo strings"),
    (44, 44, "tremolo strings"),
    (45, 45, "pizzicato strings"),
    (46, 46, "harp"),
    (47, 47, "timpani"),
    (48, 49, "string ensemble"),
    (50, 51, "synth strings"),
    (52, 54, "choir"),
    (55, 55, "orchestra hit"),
    (56, 56, "trumpet"),
    (57, 57, "trombone"),
    (58, 58, "tuba"),
    (59, 59, "muted trumpet"),
    (60, 60, "french horn"),
    (61, 61, "brass section"),
    (62, 63, "synth brass"),
    (64, 67, "saxophone"),
    (68, 70, "double reed"),
    (71, 71, "clarinet"),
    (72, 75, "flute"),
    (76, 76, "blown bottle"),
    (77, 79, "flute"),
    (80, 80, "square lead"),
    (81, 81, "saw lead"),
    (82, 83, "flute-like lead"),
    (84, 84, "guitar-like lead"),
    (85, 85, "voice lead"),
    (86, 87, "layered lead"),
    (88, 88, "new age pad"),
    (89, 89, "warm pad"),
    (90, 90, "polysynth pad"),
    (91, 91, "choir pad"),
    (92, 92, "bowed pad"),
    (93, 93, "metallic pad"),
    (94, 94, "halo pad"),
    (95, 95, "sweep pad"),
    (96, 103, "synth effects"),
    (104, 107, "plucked ethnic"),
    (108, 108, "kalimba"),
    (109, 109, "bagpipe"),
    (110, 110, "fiddle"),
    (111, 111, "shanai"),
    (112, 119, "pitched percussion"),
    (120, 127, "sound effect"),
)

# GM2 drum kits selected by program change on the drum channel.
_DRUM_KITS: tuple[tuple[int, str], ...] = (
    (0, "Standard"),
    (8, "Room"),
    (16, "Power"),
    (24, "Electronic"),
    (25, "TR-808"),
    (32, "Jazz"),
    (40, "Brush"),
    (48, "Orchestra"),
    (56, "SFX"),
)


def subfamily(program: int, is_drum: bool = False) -> str:
    if is_drum:
        return "drum kit"
    for lo, hi, name in _SUBFAMILIES:
        if lo <= program <= hi:
            return name
    raise ValueError(f"program {program} is not a GM program (0-127)")


def family(program: int, is_drum: bool = False) -> str:
    return gm_family(program, is_drum)


def instrument_name(program: int, is_drum: bool = False) -> str:
    if is_drum:
        kit = "Standard"
        for lo, name in _DRUM_KITS:
            if program >= lo:
                kit = name
        return f"{kit} Drum Kit"
    return str(pretty_midi.program_to_instrument_name(int(program)))
