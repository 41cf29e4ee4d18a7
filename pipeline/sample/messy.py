"""The "messy" sample: songs that compose real MIDI files' flaws, each one known exactly.

Lakh-style files lie and surprise: key signatures are missing, left at the
sequencer's C major default or never updated after a modulation; tempo maps
hold ramps of many small set_tempo events and steps in mid-section; a short
pickup bar or a single odd bar upsets the meter; drums play alone for bars;
tracks double each other, a dozen instruments crowd the file, some tracks are
all but inaudible, the drum track asks for a kit the SoundFont lacks; 6/8 and
double-time notation make the notated tempo differ from the felt one.

Each song follows one of twelve recipes (cycled), so every flaw appears in at
least two songs of any 12 consecutive ones; keys, tempos, forms and notes come
from a generator seeded with (seed, index). Songs are composed in musical time
(quarter-note beats) from `theory`'s chords, with one plan entry per bar so bar
lengths may vary. A "fast" recipe is composed at its felt tempo and notated at
twice the tempo with every beat doubled (half-time feel).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

import numpy as np

from pipeline.midi.keys import Scale
from pipeline.sample import theory
from pipeline.sample.compose import ADJECTIVES, CADENCE, ENERGY, NOUNS, RHYTHMS, NoteEvent, Part

Meter = tuple[int, int]
SignaturePlan = Literal["correct", "missing", "c_major", "fifth_off"]
ModulationPlan = Literal["up_step_end", "dominant_bridge"]

FLAWS: tuple[str, ...] = (
    "no_key_signature",
    "wrong_key_signature",
    "modulation_with_signature",
    "modulation_without_signature",
    "tempo_ramp",
    "tempo_step",
    "pickup_bar",
    "meter_change",
    "drum_only_intro",
    "drum_only_outro",
    "doubled_parts",
    "many_instruments",
    "near_silent_track",
    "missing_drum_kit",
    "six_eight",
    "fast_notated",
)

# Drum kits (bank 128) that pretty_midi's TimGM6mb.sf2 defines; tests check this against the file.
TIMGM6MB_KITS: frozenset[int] = frozenset({0, 8, 16, 24, 25, 32, 40, 48})
MISSING_KITS = (56, 127)  # GS "SFX" and "CM-64/32L" kits: TimGM6mb has neither

ARTISTS = ("The Loose Ends", "Rubato Kids", "Off-Grid Orchestra", "Garage Sequencers")


@dataclass(frozen=True)
class Recipe:
    meter: Meter = (4, 4)
    fast: bool = False  # notated at twice the felt tempo (every beat doubled)
    signature: SignaturePlan = "correct"
    modulation: ModulationPlan | None = None
    modulation_signature: bool = False  # a key-signature event at the change (and at the return)
    tempo: Literal["ramp", "step"] | None = None
    pickup_beats: int = 0  # a short first bar of this many quarter beats
    odd_bar: Meter | None = None  # one bar of this meter inside the first verse
    drum_intro: bool = False
    drum_outro: bool = False
    doubled: int = 0  # doubled pairs: 1 = melody an octave below, 2 = also the bass in unison
    many: bool = False  # 12+ instruments
    silent: Literal["velocity", "cc7"] | None = None
    missing_kit: bool = False


RECIPES: tuple[Recipe, ...] = (
    Recipe(modulation="up_step_end", tempo="ramp", drum_intro=True, doubled=1),
    Recipe(signature="c_major", pickup_beats=1, odd_bar=(2, 4), silent="velocity", many=True, drum_outro=True),
    Recipe(meter=(6, 8), signature="missing", tempo="step", missing_kit=True),
    Recipe(fast=True, modulation="dominant_bridge", modulation_signature=True, drum_intro=True, drum_outro=True),
    Recipe(modulation="up_step_end", modulation_signature=True, tempo="ramp", many=True, doubled=2, silent="cc7"),
    Recipe(meter=(3, 4), signature="missing", pickup_beats=1, tempo="step", missing_kit=True),
    Recipe(meter=(6, 8), signature="fifth_off", modulation="dominant_bridge", drum_intro=True, doubled=1),
    Recipe(signature="missing", odd_bar=(3, 4), pickup_beats=2, tempo="ramp", silent="velocity", many=True),
    Recipe(fast=True, tempo="step", missing_kit=True, doubled=1),
    Recipe(
        signature="c_major",
        modulation="up_step_end",
        modulation_signature=True,
        drum_intro=True,
        drum_outro=True,
        silent="cc7",
    ),
    Recipe(
        meter=(3, 4),
        modulation="dominant_bridge",
        modulation_signature=True,
        tempo="ramp",
        many=True,
        doubled=1,
        drum_outro=True,
    ),
    Recipe(tempo="step", pickup_beats=1, odd_bar=(2, 4), missing_kit=True),
)

# Forms: (section, bars). The first that fits the recipe and lands nearest a random duration wins.
FORMS: tuple[tuple[tuple[str, int], ...], ...] = (
    (("intro", 4), ("verse", 8), ("chorus", 8), ("outro", 4)),
    (("intro", 2), ("verse", 4), ("chorus", 4), ("bridge", 4), ("chorus", 4), ("outro", 2)),
    (("intro", 4), ("verse", 8), ("chorus", 8), ("bridge", 4), ("chorus", 8), ("outro", 4)),
    (("intro", 4), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("outro", 4)),
    (("intro", 4), ("verse", 8), ("chorus", 8), ("bridge", 8), ("chorus", 8), ("outro", 4)),
)
MIN_S, MAX_S = 36.0, 78.0  # planned at the base tempo; ramps and steps stay within 30-90 s


@dataclass(frozen=True)
class Bar:
    index: int
    start: float  # quarter-note beats from the song start
    beats: float  # quarter-note beats in the bar
    meter: Meter
    section: int  # index into MessyPlan.sections
    degree: int  # chord, as a degree of the bar's key
    tonic: int
    scale: Scale


@dataclass(frozen=True)
class MessySection:
    name: str
    start_bar: int
    n_bars: int
    tonic: int
    scale: Scale
    drums_only: bool = False


@dataclass
class Modulation:
    beat: float
    from_key: tuple[int, Scale]
    to_key: tuple[int, Scale]
    kind: str  # whole_step_up | dominant | return
    signature_event: bool


@dataclass
class MessyPlan:
    index: int
    title: str
    artist: str
    recipe: Recipe
    tonic: int  # home key
    scale: Scale
    meter: Meter  # the main meter
    base_tempo: float  # notated BPM at the start
    feel: float  # felt BPM / notated BPM
    sections: list[MessySection]
    bars: list[Bar]
    key_signatures: list[tuple[float, int, Scale]]  # (beat, tonic, scale) as written
    modulations: list[Modulation]
    tempo_events: list[tuple[float, float]]  # (beat, BPM), every set_tempo
    ramps: list[tuple[float, float, float, float]]  # (start beat, end beat, from BPM, to BPM)
    steps: list[tuple[float, float, float, str]]  # (beat, from BPM, to BPM, section name)
    parts: list[Part] = field(default_factory=list)
    volumes: dict[str, int] = field(default_factory=dict)  # CC7 by track name (default 100)
    doubled: list[tuple[str, str, int]] = field(default_factory=list)  # (track, doubling track, semitones)
    near_silent: list[tuple[str, str]] = field(default_factory=list)  # (track, how)
    kit_program: int = 0

    @property
    def flaws(self) -> list[str]:
        r = self.recipe
        have = {
            "no_key_signature": not self.key_signatures,
            "wrong_key_signature": r.signature in ("c_major", "fifth_off"),
            "modulation_with_signature": any(m.signature_event for m in self.modulations),
            "modulation_without_signature": any(not m.signature_event for m in self.modulations)
            and bool(self.key_signatures),
            "tempo_ramp": bool(self.ramps),
            "tempo_step": bool(self.steps),
            "pickup_bar": r.pickup_beats > 0,
            "meter_change": r.odd_bar is not None,
            "drum_only_intro": r.drum_intro,
            "drum_only_outro": r.drum_outro,
            "doubled_parts": bool(self.doubled),
            "many_instruments": len(self.parts) >= 12,
            "near_silent_track": bool(self.near_silent),
            "missing_drum_kit": self.kit_program not in TIMGM6MB_KITS,
            "six_eight": self.meter == (6, 8),
            "fast_notated": r.fast,
        }
        return [f for f in FLAWS if have[f]]

    @property
    def end_beat(self) -> float:
        last = self.bars[-1]
        return last.start + last.beats


def _bar_beats(meter: Meter) -> float:
    return meter[0] * 4 / meter[1]


def _form(rng: np.random.Generator, recipe: Recipe, bpm: float) -> list[tuple[str, int]]:
    need_bridge = recipe.modulation == "dominant_bridge"
    need_two_choruses = recipe.modulation == "up_step_end" or recipe.tempo is not None
    target = float(rng.uniform(44, 72))
    best: tuple[float, list[tuple[str, int]]] | None = None
    for form in FORMS:
        names = [n for n, _ in form]
        if need_bridge and "bridge" not in names:
            continue
        if need_two_choruses and names.count("chorus") < 2:
            continue
        seconds = sum(n for _, n in form) * _bar_beats(recipe.meter) * 60 / bpm
        if not MIN_S <= seconds <= MAX_S:
            continue
        if best is None or abs(seconds - target) < best[0]:
            best = (abs(seconds - target), list(form))
    if best is None:
        raise ValueError(f"no form fits {MIN_S}-{MAX_S} s at {bpm} BPM in {recipe.meter}")
    return best[1]


def _key(rng: np.random.Generator, recipe: Recipe) -> tuple[int, Scale]:
    if recipe.signature == "c_major":  # the sequencer's default signature on a minor song
        return int(rng.choice([pc for pc in range(12) if pc != 9])), "minor"
    return int(rng.integers(12)), ("major", "minor")[int(rng.integers(2))]


def _plan_bars(
    rng: np.random.Generator, recipe: Recipe, form: list[tuple[str, int]], home: tuple[int, Scale]
) -> tuple[list[MessySection], list[Bar], list[Modulation]]:
    """Sections (each in its key), bars (each with its meter and chord) and the modulations."""
    tonic, scale = home
    keyed: list[tuple[str, int, tuple[int, Scale]]] = []
    choruses = [i for i, (n, _) in enumerate(form) if n == "chorus"]
    for i, (name, n) in enumerate(form):
        key = home
        if recipe.modulation == "up_step_end" and i >= choruses[-1]:
            key = ((tonic + 2) % 12, scale)
        if recipe.modulation == "dominant_bridge" and name == "bridge":
            key = ((tonic + 7) % 12, scale)
        keyed.append((name, n, key))
    if recipe.pickup_beats:
        keyed.insert(0, ("pickup", 1, home))
    table = {
        sc: {name: progs[int(rng.integers(len(progs)))] for name, progs in theory.PROGRESSIONS[sc].items()}
        for sc in ("major", "minor")
    }
    sections: list[MessySection] = []
    bars: list[Bar] = []
    modulations: list[Modulation] = []
    beat, first_verse = 0.0, True
    for si, (name, n, key) in enumerate(keyed):
        drums_only = (name == "intro" and recipe.drum_intro) or (name == "outro" and recipe.drum_outro)
        if sections and (sections[-1].tonic, sections[-1].scale) != key and not drums_only:
            prev = (sections[-1].tonic, sections[-1].scale)
            kind = "return" if key == home else ("whole_step_up" if key[0] == (tonic + 2) % 12 else "dominant")
            modulations.append(Modulation(beat, prev, key, kind, recipe.modulation_signature))
        section = MessySection(name, len(bars), n, key[0], key[1], drums_only)
        sections.append(section)
        prog = (4,) if name == "pickup" else table[key[1]][name]
        for k in range(n):
            meter = recipe.meter
            if name == "pickup":
                meter = (recipe.pickup_beats, 4)
            elif name == "verse" and first_verse and recipe.odd_bar is not None and k == 2:
                meter = recipe.odd_bar  # mid-phrase: the third bar of the first verse
            bars.append(Bar(len(bars), beat, _bar_beats(meter), meter, si, prog[k % len(prog)], key[0], key[1]))
            beat += _bar_beats(meter)
        if name == "verse":
            first_verse = False
    # A drum-only outro after a modulated chorus keeps the chorus's key on paper (no pitched notes).
    return sections, bars, modulations


def _signatures(recipe: Recipe, home: tuple[int, Scale], mods: list[Modulation]) -> list[tuple[float, int, Scale]]:
    tonic, scale = home
    if recipe.signature == "missing":
        return []
    first: tuple[int, Scale] = {
        "correct": home,
        "c_major": (0, "major"),
        "fifth_off": ((tonic + 7) % 12, scale),
    }[recipe.signature]
    out = [(0.0, first[0], first[1])]
    out += [(m.beat, m.to_key[0], m.to_key[1]) for m in mods if m.signature_event]
    return out


def _tempo(
    rng: np.random.Generator, recipe: Recipe, plan_sections: list[MessySection], bars: list[Bar], bpm: float
) -> tuple[list[tuple[float, float]], list[tuple[float, float, float, float]], list[tuple[float, float, float, str]]]:
    events: list[tuple[float, float]] = [(0.0, bpm)]
    ramps: list[tuple[float, float, float, float]] = []
    steps: list[tuple[float, float, float, str]] = []

    def beat_of(bar: int) -> float:
        return bars[bar].start if bar < len(bars) else bars[-1].start + bars[-1].beats

    if recipe.tempo == "ramp":
        # One set_tempo per beat over the last chorus (e.g. 120 -> 149 over 8 bars), then held.
        chorus = [s for s in plan_sections if s.name == "chorus"][-1]
        start, end = beat_of(chorus.start_bar), beat_of(chorus.start_bar + chorus.n_bars)
        ratio = float(rng.choice([1.2, 1.24, 0.82]))
        target = round(bpm * ratio)
        n = round(end - start)
        for k in range(n):
            events.append((start + k, round(bpm + (target - bpm) * (k + 1) / n, 3)))
        ramps.append((start, end, bpm, float(target)))
    elif recipe.tempo == "step":
        # Steps inside sections: halfway through the first verse, back halfway through the next chorus.
        verse = next(s for s in plan_sections if s.name == "verse")
        chorus = next(s for s in plan_sections if s.name == "chorus" and s.start_bar > verse.start_bar)
        other = float(round(bpm * float(rng.choice([0.88, 1.12]))))
        at1 = beat_of(verse.start_bar + verse.n_bars // 2)
        at2 = beat_of(chorus.start_bar + chorus.n_bars // 2)
        events += [(at1, other), (at2, bpm)]
        steps += [(at1, bpm, other, "verse"), (at2, other, bpm, "chorus")]
    return events, ramps, steps


# ---- parts ---------------------------------------------------------------------------------------

CHORD_HITS: dict[Meter, tuple[tuple[float, float], ...]] = {
    (4, 4): ((0, 1.5), (1.5, 1.0), (2.5, 1.5)),
    (3, 4): ((0, 1.0), (1, 1.0), (2, 1.0)),
    (6, 8): ((0, 1.5), (1.5, 1.5)),
    (2, 4): ((0, 1.0), (1, 1.0)),
    (1, 4): ((0, 1.0),),
}
BASS_HITS: dict[Meter, tuple[tuple[float, int, float], ...]] = {
    (4, 4): ((0, 0, 1.5), (1.5, 0, 0.5), (2, 7, 1.0), (3, 12, 1.0)),
    (3, 4): ((0, 0, 1.0), (1, 7, 1.0), (2, 7, 1.0)),
    (6, 8): ((0, 0, 1.0), (1, 7, 0.5), (1.5, 0, 1.0), (2.5, 7, 0.5)),
    (2, 4): ((0, 0, 1.0), (1, 7, 1.0)),
    (1, 4): ((0, 0, 1.0),),
}
MELODY_RHYTHMS: dict[Meter, tuple[tuple[float, ...], ...]] = {
    **RHYTHMS,
    (2, 4): ((1, 1), (0.5, 0.5, 1), (1.5, 0.5)),
    (1, 4): ((0.5, 0.5),),
}
KICK, SNARE, HAT, CRASH, RIDE, LOW_TOM, HIGH_TOM = 36, 38, 42, 49, 51, 45, 50
GROOVES: dict[Meter, dict[int, tuple[float, ...]]] = {
    (4, 4): {KICK: (0, 2), SNARE: (1, 3), HAT: tuple(x * 0.5 for x in range(8))},
    (3, 4): {KICK: (0,), SNARE: (1, 2), HAT: tuple(x * 0.5 for x in range(6))},
    (6, 8): {KICK: (0,), SNARE: (1.5,), HAT: tuple(x * 0.5 for x in range(6))},
    (2, 4): {KICK: (0,), SNARE: (1,), HAT: (0, 0.5, 1, 1.5)},
    (1, 4): {SNARE: (0, 0.5)},
}


def _vel(rng: np.random.Generator, section: str, accent: bool, scale: float = 1.0) -> int:
    energy = ENERGY.get(section, 0.6)
    v = (48 + 62 * energy) * scale + (10 if accent else 0) + rng.integers(-5, 6)
    return int(np.clip(round(v), 1, 127))


class _Song:
    """The bars of a plan with the roles each section's bars play."""

    ROLES: ClassVar[dict[str, tuple[str, ...]]] = {
        "pickup": ("melody",),
        "intro": ("chords", "pad", "arpeggio", "extra"),
        "verse": ("chords", "bass", "melody", "arpeggio", "drums", "extra"),
        "chorus": ("chords", "bass", "melody", "pad", "drums", "extra"),
        "bridge": ("chords", "bass", "melody", "pad", "arpeggio", "drums", "extra"),
        "outro": ("chords", "pad", "bass", "extra", "drums"),
    }

    def __init__(self, sections: list[MessySection], bars: list[Bar]):
        self.sections, self.bars = sections, bars

    def bars_for(self, role: str) -> list[tuple[Bar, MessySection]]:
        out = []
        for bar in self.bars:
            sec = self.sections[bar.section]
            if sec.drums_only:
                if role == "drums":
                    out.append((bar, sec))
                continue
            if role in self.ROLES[sec.name]:
                out.append((bar, sec))
        return out


def _chords(song: _Song, rng: np.random.Generator, name: str, program: int, sustained: bool = False) -> Part:
    part = Part("chords", name, program, False, pan=54)
    prev = None
    lo, hi = (53, 76) if not sustained else (48, 72)
    for bar, sec in song.bars_for("chords"):
        voicing = theory.voice_chord(theory.triad(bar.tonic, bar.scale, bar.degree), prev, lo, hi)
        prev = voicing
        hits = ((0.0, bar.beats),) if sustained or sec.name in ("intro", "outro") else CHORD_HITS[bar.meter]
        for off, dur in hits:
            vel = _vel(rng, sec.name, off == 0, 0.8 if sustained else 0.9)
            part.notes += [NoteEvent(p, bar.start + off, dur * 0.95, vel) for p in voicing]
    return part


def _bass(song: _Song, rng: np.random.Generator, name: str, program: int) -> Part:
    part = Part("bass", name, program, False, pan=64)
    for bar, sec in song.bars_for("bass"):
        root = theory.lowest_at_or_above(theory.degree_pc(bar.tonic, bar.scale, bar.degree), 36)
        hits = ((0, 0, bar.beats),) if sec.name == "outro" else BASS_HITS[bar.meter]
        for off, interval, dur in hits:
            part.notes.append(NoteEvent(root + interval, bar.start + off, dur * 0.9, _vel(rng, sec.name, off == 0)))
    return part


def _melody(song: _Song, rng: np.random.Generator, name: str, program: int) -> Part:
    """Chord tones on strong beats, steps between, a cadence on the tonic at each section's end."""
    part = Part("melody", name, program, False, pan=64)
    lo, hi = (60, 81)
    prev = 69
    entries = song.bars_for("melody")
    for j, (bar, sec) in enumerate(entries):
        pool = theory.scale_pitches(bar.tonic, bar.scale, lo, hi)
        chord = set(theory.triad(bar.tonic, bar.scale, bar.degree))
        last_of_section = j + 1 == len(entries) or entries[j + 1][1] is not sec
        if sec.name == "pickup":  # an anacrusis: climbing eighths into the first downbeat
            rhythm: tuple[float, ...] = (0.5,) * int(bar.beats * 2)
        elif last_of_section and bar.meter in CADENCE:
            rhythm = CADENCE[bar.meter]
        else:
            options = MELODY_RHYTHMS[bar.meter]
            rhythm = options[int(rng.integers(len(options)))]
        t = 0.0
        for k, dur in enumerate(rhythm):
            if dur < 0:
                t += -dur
                continue
            if sec.name == "pickup":
                up = [p for p in pool if p > prev] or pool
                pitch = up[0]
            elif last_of_section and k == len(rhythm) - 1:
                pitch = min((p for p in pool if p % 12 == bar.tonic), key=lambda p: abs(p - prev))
            else:
                strong = t == 0 or t == bar.beats / 2
                cands = [p for p in pool if p % 12 in chord] if strong else pool
                dist = np.array([abs(p - prev) for p in cands], dtype=float)
                weights = np.exp(-dist / 2.5) * np.where(dist == 0, 0.3, 1.0)
                pitch = int(cands[int(rng.choice(len(cands), p=weights / weights.sum()))])
            part.notes.append(NoteEvent(pitch, bar.start + t, dur * 0.92, _vel(rng, sec.name, t == 0)))
            prev, t = pitch, t + dur
    return part


def _arpeggio(song: _Song, rng: np.random.Generator, name: str, program: int, low: int = 52) -> Part:
    part = Part("arpeggio", name, program, False, pan=80)
    shape = (0, 1, 2, 3, 2, 1, 2, 1)
    for bar, sec in song.bars_for("arpeggio"):
        r, third, fifth = theory.triad(bar.tonic, bar.scale, bar.degree)
        root = theory.lowest_at_or_above(r, low)
        tones = [root, theory.lowest_at_or_above(third, root), theory.lowest_at_or_above(fifth, root), root + 12]
        for step in range(int(bar.beats * 2)):
            vel = _vel(rng, sec.name, step == 0, 0.8)
            part.notes.append(NoteEvent(tones[shape[step % len(shape)]], bar.start + step * 0.5, 0.45, vel))
    return part


def _pad(song: _Song, rng: np.random.Generator, name: str, program: int, role: str = "pad") -> Part:
    part = Part("pad", name, program, False, pan=44)
    prev = None
    for bar, sec in song.bars_for(role):
        voicing = theory.voice_chord(theory.triad(bar.tonic, bar.scale, bar.degree), prev, 48, 72)
        prev = voicing
        part.notes += [NoteEvent(p, bar.start, bar.beats * 0.95, _vel(rng, sec.name, False, 0.75)) for p in voicing]
    return part


def _roots(song: _Song, rng: np.random.Generator, name: str, program: int) -> Part:
    """Pizzicato-style roots and fifths on every beat."""
    part = Part("bass", name, program, False, pan=30)
    for bar, sec in song.bars_for("extra"):
        root = theory.lowest_at_or_above(theory.degree_pc(bar.tonic, bar.scale, bar.degree), 48)
        for k in range(int(bar.beats)):
            part.notes.append(
                NoteEvent(root + (7 if k % 2 else 0), bar.start + k, 0.4, _vel(rng, sec.name, k == 0, 0.8))
            )
    return part


def _counter(song: _Song, rng: np.random.Generator, name: str, program: int) -> Part:
    """Half-bar chord tones (thirds and fifths) under the melody."""
    part = Part("melody", name, program, False, pan=90)
    for bar, sec in song.bars_for("extra"):
        _, third, fifth = theory.triad(bar.tonic, bar.scale, bar.degree)
        half = bar.beats / 2 if bar.beats >= 2 else bar.beats
        for k, pc in enumerate((third, fifth)[: round(bar.beats / half)]):
            pitch = theory.lowest_at_or_above(pc, 55)
            part.notes.append(NoteEvent(pitch, bar.start + k * half, half * 0.9, _vel(rng, sec.name, k == 0, 0.7)))
    return part


def _bells(song: _Song, rng: np.random.Generator, name: str, program: int) -> Part:
    part = Part("melody", name, program, False, pan=100)
    for bar, sec in song.bars_for("extra"):
        root, _, fifth = theory.triad(bar.tonic, bar.scale, bar.degree)
        part.notes.append(
            NoteEvent(theory.lowest_at_or_above(fifth, 79), bar.start, 0.5, _vel(rng, sec.name, True, 0.7))
        )
        if bar.beats >= 3:
            pitch = theory.lowest_at_or_above(root, 79)
            part.notes.append(NoteEvent(pitch, bar.start + bar.beats / 2, 0.5, _vel(rng, sec.name, False, 0.6)))
    return part


def _stabs(song: _Song, rng: np.random.Generator, name: str, program: int) -> Part:
    """Off-beat chord stabs."""
    part = Part("chords", name, program, False, pan=20)
    prev = None
    for bar, sec in song.bars_for("extra"):
        voicing = theory.voice_chord(theory.triad(bar.tonic, bar.scale, bar.degree), prev, 55, 79)
        prev = voicing
        for k in range(int(bar.beats)):
            vel = _vel(rng, sec.name, False, 0.7)
            part.notes += [NoteEvent(p, bar.start + k + 0.5, 0.3, vel) for p in voicing]
    return part


def _drums(song: _Song, rng: np.random.Generator, program: int) -> Part:
    part = Part("drums", "Drums", program, True, pan=64)
    entries = song.bars_for("drums")
    for j, (bar, sec) in enumerate(entries):
        next_sec = entries[j + 1][1] if j + 1 < len(entries) else None
        first_of_section = j == 0 or entries[j - 1][1] is not sec
        fill = next_sec is not None and next_sec is not sec and bar.beats >= 2
        if first_of_section:
            part.notes.append(NoteEvent(CRASH, bar.start, 1.0, _vel(rng, "chorus", True)))
        if sec.name == "outro" and not sec.drums_only:
            continue  # a crash on the outro's downbeat, then let it ring
        groove = dict(GROOVES[bar.meter])
        if sec.name == "bridge":
            groove[HAT] = ()
            groove[RIDE] = tuple(float(k) for k in range(int(bar.beats)))
        for pitch, offsets in groove.items():
            for off in offsets:
                if fill and off >= bar.beats - 1:
                    continue
                if pitch == HAT and first_of_section and off == 0:
                    continue
                scale = 0.7 if pitch in (HAT, RIDE) else 1.0
                part.notes.append(NoteEvent(pitch, bar.start + off, 0.25, _vel(rng, sec.name, off == 0, scale)))
        if fill:
            for k, off in enumerate((1.0, 0.75, 0.5, 0.25)):
                pitch = SNARE if k < 2 else (HIGH_TOM if k == 2 else LOW_TOM)
                part.notes.append(NoteEvent(pitch, bar.start + bar.beats - off, 0.25, _vel(rng, sec.name, False)))
    return part


def _octave(part: Part, name: str, program: int, semitones: int, pan: int) -> Part:
    """Another track playing exactly the same line, shifted by `semitones`."""
    notes = [replace(n, pitch=n.pitch + semitones) for n in part.notes]
    return Part(part.role, name, program, False, pan=pan, notes=notes)


def _quiet(part: Part, rng: np.random.Generator) -> Part:
    """The same notes at velocities 3-8: in the file, inaudible in the mix."""
    notes = [replace(n, velocity=int(rng.integers(3, 9))) for n in part.notes]
    return Part(part.role, part.track_name, part.program, False, pan=part.pan, notes=notes)


def _notate_fast(plan: MessyPlan) -> None:
    """Felt bars of 4/4 become two notated 4/4 bars at twice the tempo (a half-time feel)."""

    def b(x: float) -> float:
        return x * 2

    bars: list[Bar] = []
    new_start: dict[int, int] = {}
    for bar in plan.bars:
        new_start.setdefault(bar.section, len(bars))
        if bar.beats == 4:
            for half in range(2):
                bars.append(replace(bar, index=len(bars), start=b(bar.start) + half * 4))
        else:  # a short bar (pickup or odd bar) doubles its length
            meter = (int(bar.beats * 2), 4)
            bars.append(replace(bar, index=len(bars), start=b(bar.start), beats=bar.beats * 2, meter=meter))
    counts = [sum(1 for x in bars if x.section == i) for i in range(len(plan.sections))]
    plan.sections = [replace(s, start_bar=new_start[i], n_bars=counts[i]) for i, s in enumerate(plan.sections)]
    plan.bars = bars
    for part in plan.parts:
        part.notes = [replace(n, start=b(n.start), duration=b(n.duration)) for n in part.notes]
    plan.key_signatures = [(b(t), pc, sc) for t, pc, sc in plan.key_signatures]
    for m in plan.modulations:
        m.beat = b(m.beat)
    plan.tempo_events = [(b(t), bpm * 2) for t, bpm in plan.tempo_events]
    plan.ramps = [(b(s), b(e), f * 2, t * 2) for s, e, f, t in plan.ramps]
    plan.steps = [(b(t), f * 2, to * 2, name) for t, f, to, name in plan.steps]
    plan.base_tempo *= 2
    plan.feel = 0.5


PROGRAMS = {
    "chords": (0, 4, 1, 2, 5),
    "bass": (33, 32, 34, 38, 35),
    "melody": (80, 73, 65, 81, 71, 56),
    "arpeggio": (25, 24, 27, 26),
    "pad": (89, 48, 88, 90, 50),
}


def compose_messy(seed: int, index: int, titles: list[str]) -> MessyPlan:
    """Song `index` of the messy sample; `titles` are the sample-wide (unique) titles."""
    rng = np.random.default_rng([seed, 30_000, index])
    recipe = RECIPES[index % len(RECIPES)]
    home = _key(rng, recipe)
    if recipe.fast:
        bpm = float(rng.choice([92, 96, 100, 104]))  # felt; notated at twice this
    elif recipe.meter == (6, 8):
        bpm = float(rng.integers(120, 151))  # quarter notes: dotted quarters at 80-100
    else:
        bpm = float(rng.integers(84, 141))
    if index % len(RECIPES) == 3 and index < len(RECIPES):
        bpm = 100.0  # the first fast song: notated 200 BPM, felt 100
    form = _form(rng, recipe, bpm)
    sections, bars, modulations = _plan_bars(rng, recipe, form, home)
    events, ramps, steps = _tempo(rng, recipe, sections, bars, bpm)
    plan = MessyPlan(
        index=index,
        title=titles[index],
        artist=ARTISTS[index % len(ARTISTS)],
        recipe=recipe,
        tonic=home[0],
        scale=home[1],
        meter=recipe.meter,
        base_tempo=bpm,
        feel=2 / 3 if recipe.meter == (6, 8) else 1.0,
        sections=sections,
        bars=bars,
        key_signatures=_signatures(recipe, home, modulations),
        modulations=modulations,
        tempo_events=events,
        ramps=ramps,
        steps=steps,
    )
    song = _Song(sections, bars)

    def prog(role: str) -> int:
        pool = PROGRAMS[role]
        return pool[(index + index // len(RECIPES)) % len(pool)]

    parts = [
        _chords(song, rng, "Piano", prog("chords")),
        _bass(song, rng, "Bass", prog("bass")),
        _melody(song, rng, "Lead", prog("melody")),
        _arpeggio(song, rng, "Guitar", prog("arpeggio")),
        _pad(song, rng, "Pad", prog("pad")),
    ]
    if recipe.many:
        parts += [
            _chords(song, rng, "Organ", 16, sustained=True),
            _roots(song, rng, "Pizzicato", 45),
            _counter(song, rng, "Horn", 60),
            _pad(song, rng, "Choir", 52, role="extra"),
            _bells(song, rng, "Glockenspiel", 9),
            _stabs(song, rng, "Brass", 61),
            _arpeggio(song, rng, "Harp", 46, low=64),
        ]
    lead, bass = parts[2], parts[1]
    if recipe.doubled >= 1:
        parts.append(_octave(lead, "Strings", 48, -12, pan=40))
        plan.doubled.append(("Lead", "Strings", -12))
    if recipe.doubled >= 2:
        parts.append(_octave(bass, "Bass 2", 38, 0, pan=70))
        plan.doubled.append(("Bass", "Bass 2", 0))
    if recipe.silent == "velocity":
        parts.append(_quiet(_pad(song, rng, "Pad 2", 91), rng))
        plan.near_silent.append(("Pad 2", "velocity"))
    elif recipe.silent == "cc7":
        parts.append(_pad(song, rng, "Strings 2", 49))
        plan.volumes["Strings 2"] = 5
        plan.near_silent.append(("Strings 2", "cc7"))
    plan.kit_program = MISSING_KITS[index % 2] if recipe.missing_kit else 0
    parts.append(_drums(song, rng, plan.kit_program))
    plan.parts = parts
    if recipe.fast:
        _notate_fast(plan)
    return plan


def messy_titles(seed: int, n_songs: int) -> list[str]:
    rng = np.random.default_rng([seed, 30_000])
    adj, noun = rng.permutation(len(ADJECTIVES)), rng.permutation(len(NOUNS))
    return [f"{ADJECTIVES[adj[i % len(adj)]]} {NOUNS[noun[(i + i // len(noun)) % len(noun)]]}" for i in range(n_songs)]
