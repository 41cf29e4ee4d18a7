"""What a track's notes do, for the whole track or a time span: the musical facts prompts state.

`describe_notation` reads one pretty_midi instrument against its file's beat grid
(`PrettyMIDI.get_beats`: tempo changes are applied, and compound meters count
dotted-quarter beats, as the beat is felt) and answers: which role the part plays,
how fast and how dense it is, where its pitch line goes and in which register.

Notes are grouped into onsets: notes starting within `ONSET_TOLERANCE_BEATS` of
the group's first note sound as one event (a chord, a double stop, a drum hit of
kick and hi-hat). Rates are taken over the time the part plays: each onset
occupies the time until the next one, but at most `REST_BEATS` (a longer rest is
not playing time), so a part that rests for whole sections is described while it
plays.

Roles (`ROLES`), tried in this order:

1. `drums`: the instrument is a drum track (channel 10).
2. `chord progression` / `sustained chords`: at least half of the onsets hold two or
   more pitches. Chords held `SUSTAINED_CHORD_BEATS` or longer (median over the
   chords; a half note in 4/4, a whole bar in 6/8) are `sustained chords` (a pad),
   shorter ones a `chord progression` (comping, stabs, strums).
3. `bassline`: a single line (per onset, its lowest note) whose median pitch is
   below `BASS_MEDIAN_BELOW` (G3) and which has a note on at least
   `BASS_DOWNBEAT_SHARE` of the downbeats while it plays.
4. `arpeggio`: a single line at a steady, quick rate (median inter-onset interval
   at most `ARPEGGIO_MAX_IOI_BEATS`, and `ARPEGGIO_STEADY_SHARE` of the intervals
   within 15 % of it) that cycles through a chord: at most 4 pitch classes in
   three quarters of its two-beat windows (counted from each downbeat), few steps of
   1-2 semitones (a scale run is a melody) and at most half repeated notes.
5. `melody`: every other single line.

Labels, with their cut-offs:

- `speed` from the median inter-onset interval in beats: `fast` below 0.5 (faster
  than eighths in 4/4: sixteenths, triplets; in 6/8, running eighths), `slow` from 2
  (half notes, whole notes, a chord per bar in 6/8), `moderate` between (eighths,
  quarters, dotted quarters).
- `density` from notes per beat (chord tones count): `sparse` below 0.5 (fewer than
  one note every two beats), `dense` from 4 (sixteenths, or chords on every eighth),
  `moderate` between.
- `register` from the median pitch: `low` below C3 (48), `high` above C5 (72),
  `mid` between. None for drums.
- `contour` (melody, bassline, arpeggio only; else None): the line (per onset the
  highest note, the lowest for a bassline) is smoothed by a moving average over
  about an eighth of its notes. A smoothed range under `STATIC_RANGE_SEMITONES` is
  `static`; a line whose correlation with time is at least 0.8 is `rising` (at most
  -0.8: `falling`); one whose highest point lies inside (15-85 % of the way) with
  both ends at least 60 % of the range below it is an `arch` (mirrored: `valley`);
  anything else goes up and down: `wavy`.

Spans: only notes that start inside [start_s, end_s) count (either bound may be
None: open; both bounds are taken 0.1 ms early, so a note stored at 28.91567999 s
belongs to a span starting at 28.91568 s, not to the one ending there). A span
without notes gives `EMPTY`: a Notation with role None, zero rates, no labels and
polyphony 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pretty_midi

from pipeline.midi.describe import polyphony as sounding_polyphony

ROLES: tuple[str, ...] = ("chord progression", "sustained chords", "melody", "bassline", "arpeggio", "drums")
SPEEDS: tuple[str, ...] = ("slow", "moderate", "fast")
DENSITIES: tuple[str, ...] = ("sparse", "moderate", "dense")
CONTOURS: tuple[str, ...] = ("rising", "falling", "arch", "valley", "static", "wavy")
REGISTERS: tuple[str, ...] = ("low", "mid", "high")
LINE_ROLES = frozenset({"melody", "bassline", "arpeggio"})  # the roles that get a contour

ONSET_TOLERANCE_BEATS = 0.08  # notes starting this close sound as one onset (40 ms at 120 BPM)
REST_BEATS = 4.0  # an onset occupies at most this long: longer rests are not playing time
SPAN_TOLERANCE_S = 1e-4  # span bounds move this much earlier: rounded times stay on their side
LEGATO_OVERLAP_S = 0.05  # overlaps up to this long are legato, not two notes at once (polyphony)
CHORD_ONSET_SHARE = 0.5
SUSTAINED_CHORD_BEATS = 1.75
BASS_MEDIAN_BELOW = 55  # G3
BASS_DOWNBEAT_SHARE = 0.5
ARPEGGIO_MAX_IOI_BEATS = 0.5
ARPEGGIO_STEADY_SHARE = 0.75
ARPEGGIO_MAX_PITCH_CLASSES = 4
ARPEGGIO_WINDOW_BEATS = 2.0
ARPEGGIO_CHORD_WINDOW_SHARE = 0.75
ARPEGGIO_MAX_STEP_SHARE = 0.25
FAST_IOI_BEATS = 0.5  # median inter-onset interval below this: fast
SLOW_IOI_BEATS = 2.0  # at or above this: slow
GRID_TOLERANCE_BEATS = 0.01  # cut-offs on the beat grid allow this much rounding
SPARSE_NOTES_PER_BEAT = 0.5  # below: sparse
DENSE_NOTES_PER_BEAT = 4.0  # at or above: dense
LOW_BELOW = 48  # C3: median pitch below is low
HIGH_ABOVE = 72  # C5: median pitch above is high
STATIC_RANGE_SEMITONES = 3.0
TREND_CORRELATION = 0.8
EXTREME_INSIDE = (0.15, 0.85)
EXTREME_DEPTH = 0.6


@dataclass(frozen=True)
class Notation:
    role: str | None  # one of ROLES; None for an empty span
    notes_per_second: float  # over the time the part plays (see the module doc)
    notes_per_beat: float
    speed: str | None  # SPEEDS; None with fewer than two onsets
    density: str | None  # DENSITIES
    contour: str | None  # CONTOURS, for melody, bassline and arpeggio
    register: str | None  # REGISTERS; None for drums
    pitch_range_semitones: int
    polyphony: int  # most notes sounding at once (legato overlaps of LEGATO_OVERLAP_S excepted)


EMPTY = Notation(None, 0.0, 0.0, None, None, None, None, 0, 0)


@dataclass(frozen=True)
class _Onset:
    beat: float
    pitches: tuple[int, ...]  # sorted
    length_beats: float  # the longest note's duration


class _BeatGrid:
    """Seconds <-> fractional beat positions on the file's beat grid, extended linearly past its ends."""

    def __init__(self, pm: pretty_midi.PrettyMIDI):
        beats = np.asarray(pm.get_beats(), dtype=float)
        if len(beats) < 2:  # a file too short for two beats: use its first tempo
            spb = 60.0 / float(pm.get_tempo_changes()[1][0]) if len(pm.get_tempo_changes()[1]) else 0.5
            beats = np.array([0.0, spb])
        self.times = beats
        self.index = np.arange(len(beats), dtype=float)
        downbeats = np.asarray(pm.get_downbeats(), dtype=float)
        self.downbeats = self.beat(downbeats) if len(downbeats) else np.zeros(0)

    def beat(self, t: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        b = np.interp(t, self.times, self.index)
        first = (self.times[1] - self.times[0]) or 1e-9
        last = (self.times[-1] - self.times[-2]) or 1e-9
        b = np.where(t < self.times[0], (t - self.times[0]) / first, b)
        return np.where(t > self.times[-1], self.index[-1] + (t - self.times[-1]) / last, b)

    def seconds(self, b: np.ndarray | float) -> np.ndarray:
        b = np.asarray(b, dtype=float)
        t = np.interp(b, self.index, self.times)
        first = (self.times[1] - self.times[0]) or 1e-9
        last = (self.times[-1] - self.times[-2]) or 1e-9
        t = np.where(b < 0, self.times[0] + b * first, t)
        return np.where(b > self.index[-1], self.times[-1] + (b - self.index[-1]) * last, t)


def describe_notation(
    inst: pretty_midi.Instrument,
    pm: pretty_midi.PrettyMIDI,
    start_s: float | None = None,
    end_s: float | None = None,
) -> Notation:
    """Describe the notes of `inst` (a track of `pm`) that start in [start_s, end_s)."""
    lo = -np.inf if start_s is None else start_s - SPAN_TOLERANCE_S
    hi = np.inf if end_s is None else end_s - SPAN_TOLERANCE_S
    notes = [n for n in inst.notes if n.end > n.start and lo <= n.start < hi]
    if not notes:
        return EMPTY
    notes.sort(key=lambda n: (n.start, n.pitch))
    grid = _BeatGrid(pm)
    onsets = _onsets(notes, grid)
    play_beats, play_seconds = _playing_time(onsets, grid)
    n = len(notes)
    per_beat = n / play_beats if play_beats > 0 else 0.0
    pitches = np.array([note.pitch for note in notes])
    iois = np.diff([o.beat for o in onsets])
    role = _role(inst, onsets, iois, grid)
    line = [o.pitches[0] if role == "bassline" else o.pitches[-1] for o in onsets]
    return Notation(
        role=role,
        notes_per_second=round(n / play_seconds, 4) if play_seconds > 0 else 0.0,
        notes_per_beat=round(per_beat, 4),
        speed=_speed(iois),
        density=_density(per_beat),
        contour=_contour(np.array([o.beat for o in onsets]), np.array(line, float)) if role in LINE_ROLES else None,
        register=None if inst.is_drum else _register(float(np.median(pitches))),
        pitch_range_semitones=int(pitches.max() - pitches.min()),
        polyphony=sounding_polyphony(notes, LEGATO_OVERLAP_S).max_notes,
    )


def _onsets(notes: list[pretty_midi.Note], grid: _BeatGrid) -> list[_Onset]:
    starts = grid.beat(np.array([n.start for n in notes]))
    ends = grid.beat(np.array([n.end for n in notes]))
    groups: list[list[int]] = []
    for i, b in enumerate(starts):
        if groups and b - starts[groups[-1][0]] <= ONSET_TOLERANCE_BEATS:
            groups[-1].append(i)
        else:
            groups.append([i])
    return [
        _Onset(
            beat=float(starts[g[0]]),
            pitches=tuple(sorted({notes[i].pitch for i in g})),
            length_beats=float(max(ends[i] - starts[i] for i in g)),
        )
        for g in groups
    ]


def _playing_time(onsets: list[_Onset], grid: _BeatGrid) -> tuple[float, float]:
    """Beats and seconds the part plays: each onset until the next, capped at REST_BEATS."""
    beats = np.array([o.beat for o in onsets])
    gaps = np.diff(beats)
    last = max(onsets[-1].length_beats, float(np.median(gaps)) if len(gaps) else 0.0)
    spans = np.minimum(np.append(gaps, last), REST_BEATS)
    spans = np.maximum(spans, 1e-9)
    seconds = grid.seconds(beats + spans) - grid.seconds(beats)
    return float(spans.sum()), float(seconds.sum())


def _role(inst: pretty_midi.Instrument, onsets: list[_Onset], iois: np.ndarray, grid: _BeatGrid) -> str:
    if inst.is_drum:
        return "drums"
    chordal = np.mean([len(o.pitches) >= 2 for o in onsets])
    if chordal >= CHORD_ONSET_SHARE:
        held = np.median([o.length_beats for o in onsets if len(o.pitches) >= 2])
        return "sustained chords" if held >= SUSTAINED_CHORD_BEATS else "chord progression"
    lows = np.array([o.pitches[0] for o in onsets])
    if np.median(lows) < BASS_MEDIAN_BELOW and _downbeat_share(onsets, grid) >= BASS_DOWNBEAT_SHARE:
        return "bassline"
    if _is_arpeggio(onsets, iois, grid):
        return "arpeggio"
    return "melody"


def _downbeat_share(onsets: list[_Onset], grid: _BeatGrid) -> float:
    """Share of the downbeats between the first and last onset that have an onset on them."""
    beats = np.array([o.beat for o in onsets])
    downs = grid.downbeats[(grid.downbeats >= beats[0] - ONSET_TOLERANCE_BEATS) & (grid.downbeats <= beats[-1])]
    if not len(downs):
        return 1.0 if len(beats) else 0.0
    # The nearest onset to each downbeat is a neighbour in sorted order (no downbeats x onsets matrix:
    # a 2-hour bassline made that 1 GB).
    ordered = np.sort(beats)
    at = np.searchsorted(ordered, downs)
    before, after = ordered[np.maximum(at - 1, 0)], ordered[np.minimum(at, len(ordered) - 1)]
    nearest = np.minimum(np.abs(downs - before), np.abs(downs - after))
    return float(np.mean(nearest <= ONSET_TOLERANCE_BEATS))


def _is_arpeggio(onsets: list[_Onset], iois: np.ndarray, grid: _BeatGrid) -> bool:
    if len(iois) < 4:
        return False
    step = float(np.median(iois))
    if step <= 0 or step > ARPEGGIO_MAX_IOI_BEATS + 1e-6:
        return False
    if np.mean(np.abs(iois - step) <= 0.15 * step) < ARPEGGIO_STEADY_SHARE:
        return False
    line = np.array([o.pitches[-1] for o in onsets])
    moves = np.abs(np.diff(line))
    if np.mean((moves >= 1) & (moves <= 2)) > ARPEGGIO_MAX_STEP_SHARE or np.mean(moves == 0) > 0.5:
        return False
    # Pitch classes per two beats (from each downbeat): an arpeggio outlines one chord at a time.
    beats = np.array([o.beat for o in onsets])
    downs = grid.downbeats if len(grid.downbeats) else np.zeros(1)
    bar = np.maximum(np.searchsorted(downs, beats + 1e-6, side="right") - 1, 0)
    window = bar * 1000 + np.floor((beats - downs[bar]) / ARPEGGIO_WINDOW_BEATS).astype(int)
    chordal = []
    for w in np.unique(window):
        if np.count_nonzero(window == w) >= 3:
            chordal.append(len({int(p) % 12 for p in line[window == w]}) <= ARPEGGIO_MAX_PITCH_CLASSES)
    return bool(chordal) and float(np.mean(chordal)) >= ARPEGGIO_CHORD_WINDOW_SHARE


def _speed(iois: np.ndarray) -> str | None:
    if not len(iois):
        return None
    step = float(np.median(iois))
    if step < FAST_IOI_BEATS - GRID_TOLERANCE_BEATS:
        return "fast"
    return "slow" if step >= SLOW_IOI_BEATS - GRID_TOLERANCE_BEATS else "moderate"


def _density(per_beat: float) -> str:
    return "sparse" if per_beat < SPARSE_NOTES_PER_BEAT else "dense" if per_beat >= DENSE_NOTES_PER_BEAT else "moderate"


def _register(median_pitch: float) -> str:
    return "low" if median_pitch < LOW_BELOW else "high" if median_pitch > HIGH_ABOVE else "mid"


def _contour(beats: np.ndarray, line: np.ndarray) -> str | None:
    if len(line) < 2:
        return None
    w = max(1, round(len(line) / 8)) | 1
    if w > 1:  # centred moving average, edges averaged over what exists
        kernel = np.ones(w)
        smooth = np.convolve(line, kernel, mode="same") / np.convolve(np.ones(len(line)), kernel, mode="same")
    else:
        smooth = line.astype(float)
    span = float(smooth.max() - smooth.min())
    if span < STATIC_RANGE_SEMITONES:
        return "static"
    if np.ptp(beats) > 0:
        r = float(np.corrcoef(beats, smooth)[0, 1])
        if r >= TREND_CORRELATION:
            return "rising"
        if r <= -TREND_CORRELATION:
            return "falling"
    where = (beats - beats[0]) / (np.ptp(beats) or 1.0)
    for shape, values in (("arch", smooth), ("valley", -smooth)):
        k = int(np.argmax(values))
        inside = EXTREME_INSIDE[0] <= where[k] <= EXTREME_INSIDE[1]
        if inside and min(values[k] - values[0], values[k] - values[-1]) >= EXTREME_DEPTH * span:
            return shape
    return "wavy"
