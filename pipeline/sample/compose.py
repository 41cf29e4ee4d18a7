"""Compose a song in musical time (quarter-note beats): form, harmony and parts.

Every choice comes from a seeded generator, so the same seed gives the same songs.
Sections repeat (a second verse replays the first verse's harmony and melody),
instrumentation changes between sections, and a few songs change tempo.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.midi.keys import Scale
from pipeline.sample import theory

METERS: tuple[tuple[int, int], ...] = ((4, 4), (3, 4), (6, 8))
FORMS: tuple[tuple[str, ...], ...] = (
    ("intro", "verse", "chorus", "outro"),
    ("intro", "verse", "chorus", "verse", "chorus", "outro"),
    ("intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "outro"),
)
ENERGY = {"intro": 0.55, "verse": 0.7, "chorus": 0.9, "bridge": 0.65, "outro": 0.55}
MIN_DURATION_S, MAX_DURATION_S = 30.0, 120.0
MIN_TEMPO, MAX_TEMPO = 70, 170

# Instrument pools per role (GM programs), cycled with different strides so the
# sample covers every family the issue names.
CHORD_PROGRAMS = (0, 4, 1, 2, 5)  # pianos, electric pianos
BASS_PROGRAMS = (33, 32, 34, 38, 35)  # electric, acoustic, synth bass
LEAD_PROGRAMS = (80, 56, 73, 81, 61, 65, 71, 60)  # leads, brass, flute, sax, clarinet, horn
ARP_PROGRAMS = (25, 24, 27, 26)  # guitars
PAD_PROGRAMS = (89, 48, 88, 49, 90, 50)  # pads and string ensembles

RHYTHMS: dict[tuple[int, int], tuple[tuple[float, ...], ...]] = {
    (4, 4): ((1, 1, 1, 1), (1.5, 0.5, 1, 1), (0.5, 0.5, 1, 2), (2, 1, 1), (1, 0.5, 0.5, 2), (1, 1, 2), (2, -1, 1)),
    (3, 4): ((1, 1, 1), (2, 1), (1.5, 0.5, 1), (0.5, 0.5, 2), (1, 2), (2, -1)),
    (6, 8): ((1.5, 1.5), (1, 0.5, 1.5), (0.5, 0.5, 0.5, 1.5), (1, 0.5, 1, 0.5), (1.5, 1, 0.5)),
}
CADENCE: dict[tuple[int, int], tuple[float, ...]] = {(4, 4): (2, 2), (3, 4): (1, 2), (6, 8): (1.5, 1.5)}

KICK, SNARE, HAT, OPEN_HAT, CRASH, RIDE, LOW_TOM, HIGH_TOM = 36, 38, 42, 46, 49, 51, 45, 50


@dataclass
class NoteEvent:
    pitch: int
    start: float  # quarter-note beats from the song start
    duration: float
    velocity: int


@dataclass
class Part:
    role: str
    track_name: str
    program: int
    is_drum: bool
    pan: int
    notes: list[NoteEvent] = field(default_factory=list)
    controls: list[tuple[float, int, int]] = field(default_factory=list)  # (beat, cc, value)
    bends: list[tuple[float, int]] = field(default_factory=list)  # (beat, pitchwheel value)


@dataclass(frozen=True)
class Section:
    name: str
    start_bar: int
    n_bars: int
    progression: tuple[int, ...]  # one degree per bar


@dataclass
class SongPlan:
    index: int
    title: str
    artist: str
    tonic: int
    scale: Scale
    meter: tuple[int, int]
    base_tempo: int
    tempo_change: str | None
    has_key_signature: bool
    sections: list[Section]
    tempo_events: list[tuple[float, float]]  # (beat, bpm)
    parts: list[Part]

    @property
    def bar_beats(self) -> float:
        """Quarter-note beats per bar."""
        num, den = self.meter
        return num * 4 / den

    @property
    def n_bars(self) -> int:
        return sum(s.n_bars for s in self.sections)


ADJECTIVES = (
    "Amber",
    "Silver",
    "Quiet",
    "Electric",
    "Velvet",
    "Northern",
    "Hollow",
    "Golden",
    "Restless",
    "Distant",
    "Crimson",
    "Paper",
    "Glass",
    "Midnight",
    "Open",
    "Wandering",
    "Lucky",
    "Borrowed",
    "Sleepless",
    "Copper",
    "Faded",
    "Hidden",
    "Bright",
    "Patient",
)
NOUNS = (
    "Skyline",
    "Harbor",
    "Letters",
    "Engines",
    "Gardens",
    "Streets",
    "Orbit",
    "Lanterns",
    "Tides",
    "Meadow",
    "Signals",
    "Bridges",
    "Echoes",
    "Rooftops",
    "Compass",
    "Windows",
    "Rivers",
    "Parade",
    "Circuit",
    "Summer",
    "Avenue",
    "Horizon",
    "Carousel",
    "Weather",
)
ARTISTS = (
    "The Velvet Fourths",
    "Harbor Lights Trio",
    "Modal Citizens",
    "Cadence Club",
    "Open Voicings",
    "Tritone Society",
)


def _seconds_per_bar(bar_beats: float, bpm: float) -> float:
    return bar_beats * 60.0 / bpm


def _choose_form(rng: np.random.Generator, bar_beats: float, bpm: float) -> list[tuple[str, int]]:
    """The (form, length multiplier) whose duration lands closest to a random target."""
    target = float(rng.uniform(40, 100))
    best: tuple[float, list[tuple[str, int]]] | None = None
    for form in FORMS:
        for mult in (1, 2):
            lengths = [(name, 4 if name in ("intro", "outro") else 8 * mult) for name in form]
            seconds = sum(n for _, n in lengths) * _seconds_per_bar(bar_beats, bpm)
            if not 34 <= seconds <= 105:  # margin for tempo changes
                continue
            score = abs(seconds - target)
            if best is None or score < best[0]:
                best = (score, lengths)
    if best is None:
        raise ValueError(f"no form fits {MIN_DURATION_S}-{MAX_DURATION_S} s at {bpm} BPM")
    return best[1]


def _sections(rng: np.random.Generator, scale: Scale, lengths: list[tuple[str, int]]) -> list[Section]:
    table = theory.PROGRESSIONS[scale]
    chosen = {name: table[name][int(rng.integers(len(table[name])))] for name in table}
    sections, bar = [], 0
    for name, n_bars in lengths:
        prog = chosen[name]
        sections.append(Section(name, bar, n_bars, tuple(prog[i % len(prog)] for i in range(n_bars))))
        bar += n_bars
    return sections


def _tempo_events(plan: SongPlan) -> list[tuple[float, float]]:
    base = float(plan.base_tempo)
    events = [(0.0, base)]
    bb = plan.bar_beats
    if plan.tempo_change == "step":
        # One section (the bridge, else the last section before the outro) at another tempo.
        target = next((s for s in plan.sections if s.name == "bridge"), plan.sections[-2])
        other = round(base * 0.85) if base * 0.85 >= MIN_TEMPO else round(base * 1.15)
        events.append((target.start_bar * bb, float(other)))
        events.append(((target.start_bar + target.n_bars) * bb, base))
    elif plan.tempo_change == "accelerando":
        last_chorus = [s for s in plan.sections if s.name == "chorus"][-1]
        events.append((last_chorus.start_bar * bb, float(min(MAX_TEMPO, round(base * 1.1)))))
    elif plan.tempo_change == "ritardando":
        outro = plan.sections[-1]
        start = (outro.start_bar + outro.n_bars - 2) * bb
        end_bpm = max(float(MIN_TEMPO), base * 0.8)
        n = int(2 * bb)
        for k in range(1, n + 1):
            events.append((start + k - 1, round(base + (end_bpm - base) * k / n, 3)))
    return events


def _velocity(rng: np.random.Generator, section: str, accent: bool, scale: float = 1.0) -> int:
    v = (48 + 62 * ENERGY[section]) * scale + (10 if accent else 0) + rng.integers(-5, 6)
    return int(np.clip(round(v), 1, 127))


def _chords_part(plan: SongPlan, rng: np.random.Generator, program: int) -> Part:
    part = Part("chords", "Keys", program, False, pan=54)
    pattern = {
        (4, 4): ((0, 1.5), (1.5, 1.0), (2.5, 1.5)),
        (3, 4): ((0, 1.0), (1, 1.0), (2, 1.0)),
        (6, 8): ((0, 1.5), (1.5, 1.5)),
    }[plan.meter]
    bb, prev = plan.bar_beats, None
    for sec in plan.sections:
        for k, degree in enumerate(sec.progression):
            bar_start = (sec.start_bar + k) * bb
            voicing = theory.voice_chord(theory.triad(plan.tonic, plan.scale, degree), prev, 53, 76)
            prev = voicing
            last_bar = sec is plan.sections[-1] and k == sec.n_bars - 1
            hits = ((0.0, bb),) if last_bar or sec.name == "intro" else pattern
            part.controls += [(bar_start, 64, 0), (bar_start + 0.125, 64, 127)]
            for off, dur in hits:
                vel = _velocity(rng, sec.name, off == 0, 0.9)
                part.notes += [NoteEvent(p, bar_start + off, dur * 0.95, vel) for p in voicing]
    end = plan.n_bars * bb
    part.controls.append((end, 64, 0))
    return part


def _bass_part(plan: SongPlan, rng: np.random.Generator, program: int) -> Part:
    part = Part("bass", "Bass", program, False, pan=64)
    # (offset, interval above the root, duration)
    pattern = {
        (4, 4): ((0, 0, 1.5), (1.5, 0, 0.5), (2, 7, 1.0), (3, 12, 1.0)),
        (3, 4): ((0, 0, 1.0), (1, 7, 1.0), (2, 7, 1.0)),
        (6, 8): ((0, 0, 1.0), (1, 7, 0.5), (1.5, 0, 1.0), (2.5, 7, 0.5)),
    }[plan.meter]
    bb = plan.bar_beats
    for sec in plan.sections:
        if sec.name == "intro":
            continue
        for k, degree in enumerate(sec.progression):
            bar_start = (sec.start_bar + k) * bb
            root = theory.lowest_at_or_above(theory.degree_pc(plan.tonic, plan.scale, degree), 36)
            hits = ((0, 0, bb),) if sec.name == "outro" else pattern
            for off, interval, dur in hits:
                part.notes.append(
                    NoteEvent(root + interval, bar_start + off, dur * 0.9, _velocity(rng, sec.name, off == 0))
                )
    return part


def _phrase(
    plan: SongPlan, rng: np.random.Generator, degrees: tuple[int, ...], lo: int, hi: int, start: int, cadence: bool
) -> tuple[list[tuple[float, float, int]], int]:
    """A melodic phrase over one chord per bar: chord tones on strong beats, steps between."""
    pool = theory.scale_pitches(plan.tonic, plan.scale, lo, hi)
    tonics = [p for p in pool if p % 12 == plan.tonic]
    rhythms = RHYTHMS[plan.meter]
    notes: list[tuple[float, float, int]] = []
    prev = start
    for k, degree in enumerate(degrees):
        chord = set(theory.triad(plan.tonic, plan.scale, degree))
        final = cadence and k == len(degrees) - 1
        rhythm = CADENCE[plan.meter] if final else rhythms[int(rng.integers(len(rhythms)))]
        t = 0.0
        for j, dur in enumerate(rhythm):
            if dur < 0:
                t += -dur
                continue
            if final and j == len(rhythm) - 1:
                pitch = min(tonics, key=lambda p: abs(p - prev))
            else:
                strong = t == 0 or t == plan.bar_beats / 2
                cands = [p for p in pool if p % 12 in chord] if strong else pool
                dist = np.array([abs(p - prev) for p in cands], dtype=float)
                weights = np.exp(-dist / 2.5) * np.where(dist == 0, 0.3, 1.0)
                pitch = int(cands[int(rng.choice(len(cands), p=weights / weights.sum()))])
            notes.append((k * plan.bar_beats + t, dur, pitch))
            prev = pitch
            t += dur
    return notes, prev


def _lead_part(plan: SongPlan, rng: np.random.Generator, program: int) -> Part:
    part = Part("melody", "Lead", program, False, pan=64)
    lo, hi = (55, 79) if 56 <= program <= 63 else (62, 86)
    bb = plan.bar_beats
    memory: dict[str, list[tuple[float, float, int]]] = {}
    prev = (lo + hi) // 2
    for sec in plan.sections:
        if sec.name not in ("verse", "chorus", "bridge"):
            continue
        if sec.name not in memory:  # repeated sections replay their melody
            notes: list[tuple[float, float, int]] = []
            for start in range(0, sec.n_bars, 4):
                degrees = sec.progression[start : start + 4]
                cadence = (start // 4) % 2 == 1 or start + 4 >= sec.n_bars
                phrase, prev = _phrase(plan, rng, degrees, lo, hi, prev, cadence)
                notes += [(start * bb + t, d, p) for t, d, p in phrase]
            memory[sec.name] = notes
        sec_start = sec.start_bar * bb
        for t, dur, pitch in memory[sec.name]:
            on_beat = (t % bb) == 0
            part.notes.append(NoteEvent(pitch, sec_start + t, dur * 0.92, _velocity(rng, sec.name, on_beat)))
        if 80 <= program <= 87 and sec.name == "chorus":  # a synth lead scoops into the chorus
            part.bends += [(sec_start, -2048), (sec_start + 0.125, -1024), (sec_start + 0.25, 0)]
    return part


def _arp_part(plan: SongPlan, rng: np.random.Generator, program: int) -> Part:
    part = Part("arpeggio", "Guitar", program, False, pan=80)
    bb = plan.bar_beats
    shape = (0, 1, 2, 3, 2, 1, 2, 1)
    for sec in plan.sections:
        if sec.name not in ("intro", "verse", "bridge"):
            continue
        for k, degree in enumerate(sec.progression):
            bar_start = (sec.start_bar + k) * bb
            r, third, fifth = theory.triad(plan.tonic, plan.scale, degree)
            root = theory.lowest_at_or_above(r, 52)
            tones = [root, theory.lowest_at_or_above(third, root), theory.lowest_at_or_above(fifth, root), root + 12]
            for step in range(int(bb * 2)):
                part.notes.append(
                    NoteEvent(
                        tones[shape[step % len(shape)]],
                        bar_start + step * 0.5,
                        0.45,
                        _velocity(rng, sec.name, step == 0, 0.8),
                    )
                )
    return part


def _pad_part(plan: SongPlan, rng: np.random.Generator, program: int) -> Part:
    part = Part("pad", "Strings" if 40 <= program <= 55 else "Pad", program, False, pan=44)
    bb, prev = plan.bar_beats, None
    for sec in plan.sections:
        if sec.name not in ("intro", "chorus", "bridge", "outro"):
            continue
        for k, degree in enumerate(sec.progression):
            voicing = theory.voice_chord(theory.triad(plan.tonic, plan.scale, degree), prev, 48, 72)
            prev = voicing
            start = (sec.start_bar + k) * bb
            vel = _velocity(rng, sec.name, False, 0.75)
            part.notes += [NoteEvent(p, start, bb * 0.98, vel) for p in voicing]
    return part


def _drum_part(plan: SongPlan, rng: np.random.Generator) -> Part:
    part = Part("drums", "Drums", 0, True, pan=64)
    bb = plan.bar_beats
    grooves = {
        (4, 4): {KICK: (0, 2), SNARE: (1, 3), HAT: tuple(x * 0.5 for x in range(8))},
        (3, 4): {KICK: (0,), SNARE: (1, 2), HAT: tuple(x * 0.5 for x in range(6))},
        (6, 8): {KICK: (0,), SNARE: (1.5,), HAT: tuple(x * 0.5 for x in range(6))},
    }[plan.meter]
    names = [s.name for s in plan.sections]
    for si, sec in enumerate(plan.sections):
        if sec.name in ("intro", "outro"):
            if sec.name == "outro":
                part.notes.append(NoteEvent(CRASH, sec.start_bar * bb, 1.0, _velocity(rng, "chorus", True)))
            continue
        before_chorus = si + 1 < len(names) and names[si + 1] == "chorus"
        for k in range(sec.n_bars):
            bar_start = (sec.start_bar + k) * bb
            fill = before_chorus and k == sec.n_bars - 1
            if k == 0 and sec.name != "bridge":
                part.notes.append(NoteEvent(CRASH, bar_start, 1.0, _velocity(rng, sec.name, True)))
            if sec.name == "bridge":
                for off in range(int(bb)):
                    part.notes.append(NoteEvent(RIDE, bar_start + off, 0.5, _velocity(rng, sec.name, off == 0, 0.8)))
                continue
            for pitch, offsets in grooves.items():
                for off in offsets:
                    if fill and off >= bb - 1:
                        continue
                    if pitch == HAT and k == 0 and off == 0:
                        continue  # the crash takes the downbeat
                    scale = 0.7 if pitch == HAT else 1.0
                    part.notes.append(
                        NoteEvent(pitch, bar_start + off, 0.25, _velocity(rng, sec.name, off == 0, scale))
                    )
            if fill:
                for j, off in enumerate((bb - 1, bb - 0.75, bb - 0.5, bb - 0.25)):
                    pitch = SNARE if j < 2 else (HIGH_TOM if j == 2 else LOW_TOM)
                    part.notes.append(NoteEvent(pitch, bar_start + off, 0.25, _velocity(rng, sec.name, False)))
            if sec.name == "chorus" and plan.meter == (4, 4) and k % 2 == 1:
                part.notes.append(NoteEvent(OPEN_HAT, bar_start + bb - 0.5, 0.5, _velocity(rng, sec.name, False, 0.7)))
    return part


def compose(seed: int, index: int, keys: list[tuple[int, Scale]], tempos: list[int], titles: list[str]) -> SongPlan:
    """Song `index` of the sample; `keys`, `tempos` and `titles` are the sample-wide assignments."""
    rng = np.random.default_rng([seed, index])
    tonic, scale = keys[index % len(keys)]
    meter = METERS[index % 3]
    tempo = tempos[index % len(tempos)]
    change = ("step", "ritardando", "accelerando")[(index // 4) % 3] if index % 4 == 3 else None
    bar_beats = meter[0] * 4 / meter[1]
    sections = _sections(rng, scale, _choose_form(rng, bar_beats, tempo))
    plan = SongPlan(
        index=index,
        title=titles[index],
        artist=ARTISTS[index % len(ARTISTS)],
        tonic=tonic,
        scale=scale,
        meter=meter,
        base_tempo=tempo,
        tempo_change=change,
        has_key_signature=index % 3 != 2,
        sections=sections,
        tempo_events=[],
        parts=[],
    )
    plan.tempo_events = _tempo_events(plan)
    parts = [_chords_part(plan, rng, CHORD_PROGRAMS[index % len(CHORD_PROGRAMS)])]
    parts.append(_bass_part(plan, rng, BASS_PROGRAMS[(index // 2) % len(BASS_PROGRAMS)]))
    parts.append(_lead_part(plan, rng, LEAD_PROGRAMS[index % len(LEAD_PROGRAMS)]))
    if index % 4 != 1:
        parts.append(_arp_part(plan, rng, ARP_PROGRAMS[index % len(ARP_PROGRAMS)]))
    if index % 3 != 1:
        parts.append(_pad_part(plan, rng, PAD_PROGRAMS[(index // 3) % len(PAD_PROGRAMS)]))
    if index % 6 != 5:
        parts.append(_drum_part(plan, rng))
    plan.parts = parts
    return plan


def sample_assignments(seed: int, n_songs: int) -> tuple[list[tuple[int, Scale]], list[int], list[str]]:
    """Keys (all 24 within every 24 songs), tempos spread over 70-170 BPM, unique titles."""
    rng = np.random.default_rng([seed, 10_000])
    keys: list[tuple[int, Scale]] = [(pc, sc) for pc in range(12) for sc in ("major", "minor")]
    keys = [keys[i] for i in rng.permutation(len(keys))]
    base = [MIN_TEMPO + round((MAX_TEMPO - MIN_TEMPO) * k / 23) for k in range(24)]
    tempos = [base[i] for i in rng.permutation(24)]
    tempos = [tempos[i % 24] + (i // 24) * 3 * (1 if tempos[i % 24] < 120 else -1) for i in range(n_songs)]
    adj, noun = rng.permutation(len(ADJECTIVES)), rng.permutation(len(NOUNS))
    titles = [
        f"{ADJECTIVES[adj[i % len(adj)]]} {NOUNS[noun[(i + i // len(noun)) % len(noun)]]}" for i in range(n_songs)
    ]
    return keys, tempos, titles
