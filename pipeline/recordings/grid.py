"""A recording's beat and bar grid, and whether it can be trusted to state bars and BPM.

Beats come from essentia's multi-feature beat tracker over the whole recording, each
moved to the attack it marks. A person's BPM constrains them (a tracker at double or
half the hand tempo is folded to it; one that disagrees otherwise leaves the grid
unreliable). Downbeats are the beat phase whose bars differ most in harmony from
their neighbours (chords change on bar lines): with the wrong phase every bar
straddles a change and neighbours look alike. The meter is the person's when given;
otherwise 4 or 3 beats per bar, whichever has the clearer phase. A phase (or meter)
that does not stand out by `min_downbeat_contrast`, or beats with more bass between
them than on them (the tracker may sit on the off-beats), state no bars: clips are then
cut on beats without a bar count.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

FRAME = 2048
HOP = 512
CHROMA_BAND_HZ = (55.0, 2000.0)
LOW_BAND_HZ = 200.0
OFFBEAT_MAX = 1.0  # low-band onsets between the beats over those on them, above which bars are withheld
REFINE_REACH_S = 0.035
REFINE_FRAME = 256
REFINE_HOP = 32
REFINE_SPAN = 9  # beats whose median attack shift moves each beat
CANDIDATES = (4, 3)  # beats per bar the meter search tries
METER_MARGIN = 1.5  # the winning bar length's contrast over the other's, without a hand meter


@dataclass(frozen=True)
class GridParams:
    min_confidence: float  # essentia's beat confidence below which the grid is unreliable
    max_drift: float  # (p90 - p10) / median beat interval above which tempo is not steady
    hand_bpm_tolerance: float  # relative distance to the hand BPM (or its double/half) still agreeing
    min_downbeat_contrast: float  # z-score margin of the downbeat phase over the runner-up


@dataclass(frozen=True)
class Grid:
    """Beat times and, when sure, the bar structure over them."""

    beats: np.ndarray  # seconds
    confidence: float
    reliable: bool
    why: str | None  # why the grid is not reliable (None when it is)
    beats_per_bar: int | None
    meter: str | None  # the bars' time signature, '<n>/<d>'
    meter_source: str | None  # hand | audio
    first_downbeat: int | None  # index into beats
    contrast: float | None  # the downbeat phase's relative margin over the runner-up
    doubt: str | None = None  # why no bars are stated although the beats are reliable

    @property
    def bpm(self) -> float | None:
        return tempo_of(self.beats)


def tempo_of(beats: np.ndarray) -> float | None:
    """60 / the median beat interval."""
    if len(beats) < 2:
        return None
    return float(60.0 / np.median(np.diff(beats)))


def drift_of(beats: np.ndarray) -> float:
    """How unsteady the beat intervals are: (p90 - p10) / median."""
    ibi = np.diff(beats)
    if len(ibi) < 2:
        return 0.0
    p10, p50, p90 = np.percentile(ibi, [10, 50, 90])
    return float((p90 - p10) / p50)


@functools.cache
def _tracker():
    import essentia.standard as es

    return es.RhythmExtractor2013(method="multifeature")


def beats_per_bar(meter: str | None) -> int | None:
    """Tracked beats in a bar of `meter`: n/4 and n/2 count n; compound n/8 (6/8, 9/8, 12/8) counts n/3."""
    if not meter:
        return None
    num, den = (int(x) for x in meter.split("/"))
    if den in (2, 4):
        return num
    if den == 8 and num % 3 == 0:
        return num // 3
    return None


@dataclass(frozen=True)
class Frames:
    """Per STFT frame (FRAME, HOP), from one pass over the recording in blocks (bounded memory)."""

    low_energy: np.ndarray  # log energy below LOW_BAND_HZ
    chroma: np.ndarray  # (frames, 12): CHROMA_BAND_HZ magnitudes folded to pitch classes


def spectral_frames(mono: np.ndarray, sr: int) -> Frames:
    freqs = np.fft.rfftfreq(FRAME, 1 / sr)
    low = freqs < LOW_BAND_HZ
    band = (freqs >= CHROMA_BAND_HZ[0]) & (freqs <= CHROMA_BAND_HZ[1])
    pcs = np.round(12 * np.log2(freqs[band] / 440.0) + 69).astype(int) % 12
    fold = np.zeros((int(band.sum()), 12), np.float32)
    fold[np.arange(band.sum()), pcs] = 1.0
    window = np.hanning(FRAME).astype(np.float32)
    n = max(0, 1 + (len(mono) - FRAME) // HOP)
    energy = np.zeros(n, np.float32)
    chroma = np.zeros((n, 12), np.float32)
    for f0 in range(0, n, 4096):
        f1 = min(n, f0 + 4096)
        idx = np.arange(f0, f1)[:, None] * HOP + np.arange(FRAME)[None, :]
        mag = np.abs(np.fft.rfft(mono[idx] * window, axis=1))
        energy[f0:f1] = np.log1p(100.0 * (mag[:, low] ** 2).sum(axis=1))
        chroma[f0:f1] = mag[:, band] @ fold
    return Frames(energy, chroma)


def beat_chroma(frames: Frames, sr: int, beats: np.ndarray) -> np.ndarray:
    """(beats - 1, 12): the mean chroma of each interval between consecutive beats."""
    chroma = frames.chroma
    at = np.clip(np.round(beats * sr / HOP).astype(int), 0, max(0, len(chroma) - 1))
    out = np.zeros((max(0, len(beats) - 1), 12), np.float32)
    for i in range(len(out)):
        if at[i + 1] > at[i]:
            out[i] = chroma[at[i] : at[i + 1]].mean(axis=0)
    return out


def downbeat_phase(chroma: np.ndarray, per_bar: int) -> tuple[int, float]:
    """(phase, contrast): the beat phase whose bars differ most from their neighbours in harmony, and its
    relative margin over the runner-up phase ((best - second) / best; 0: no phase stands out)."""
    scores = []
    for ph in range(per_bar):
        n = (len(chroma) - ph) // per_bar
        if n < 3:
            return 0, 0.0
        bars = chroma[ph : ph + n * per_bar].reshape(n, per_bar, 12).sum(axis=1)
        bars = bars / np.maximum(np.linalg.norm(bars, axis=1, keepdims=True), 1e-9)
        scores.append((float(np.mean(1.0 - (bars[:-1] * bars[1:]).sum(axis=1))), ph))
    scores.sort(reverse=True)
    best, second = scores[0][0], scores[1][0]
    return scores[0][1], (best - second) / best if best > 0 else 0.0


def refine(mono: np.ndarray, sr: int, beats: np.ndarray) -> np.ndarray:
    """The beats moved onto the attacks they mark: the tracker's ticks lie on an 11.6 ms onset grid and
    lag attacks by up to ~25 ms. Each beat's sharpest energy rise within REFINE_REACH_S (its frame end
    lands within ~3 ms of a clean attack) gives a shift; the shift applied is the running median over
    REFINE_SPAN beats, so a swung hat or a syncopated hit moves no single beat off the pulse."""
    shifts = _attack_times(mono, sr, beats) - beats
    half = REFINE_SPAN // 2
    padded = np.pad(shifts, half, mode="edge")
    smooth = np.array([np.median(padded[i : i + REFINE_SPAN]) for i in range(len(beats))])
    return np.maximum.accumulate(beats + smooth)


def _attack_times(mono: np.ndarray, sr: int, beats: np.ndarray) -> np.ndarray:
    out = beats.copy()
    reach = round(REFINE_REACH_S * sr)
    for i, t in enumerate(beats):
        c = round(t * sr)
        seg = mono[max(0, c - reach) : c + reach]
        n = 1 + (len(seg) - REFINE_FRAME) // REFINE_HOP
        if n < 3:
            continue
        idx = np.arange(n)[:, None] * REFINE_HOP + np.arange(REFINE_FRAME)[None, :]
        level = 10 * np.log10((seg[idx].astype(np.float64) ** 2).mean(axis=1) + 1e-10)
        k = int(np.argmax(np.diff(level))) + 1
        out[i] = (max(0, c - reach) + k * REFINE_HOP + REFINE_FRAME) / sr
    return out


def offbeat_ratio(frames: Frames, sr: int, beats: np.ndarray) -> float:
    """Mean low-band (< LOW_BAND_HZ) onset strength halfway between beats over that at the beats: above
    OFFBEAT_MAX the kick and bass land between the tracked beats, which then may be the off-beats
    (a tracker locked half a beat late); on third-party MIDI it flagged both such files of 30."""
    energy = frames.low_energy
    flux = np.maximum(0.0, np.diff(energy, prepend=energy[:1]))
    if len(flux) == 0 or len(beats) < 2:
        return 0.0

    def strength(times: np.ndarray) -> float:
        at = np.round(times * sr / HOP).astype(int)
        at = at[at < len(flux)]
        return float(np.mean([flux[max(0, f - 2) : f + 3].max() for f in at])) if len(at) else 0.0

    at_beats = strength(beats)
    return strength((beats[:-1] + beats[1:]) / 2) / at_beats if at_beats > 0 else 0.0


def conform(beats: np.ndarray, hand_bpm: float, tolerance: float) -> np.ndarray | None:
    """The tracked beats at the person's tempo (folded from double or half time); None: they disagree.
    Folding double time keeps every other beat from the first; the downbeat search then finds the bars."""
    bpm = tempo_of(beats)
    if bpm is None:
        return None
    ratio = bpm / hand_bpm
    if abs(ratio - 1) <= tolerance:
        return beats
    if abs(ratio / 2 - 1) <= tolerance:
        return beats[0::2]
    if abs(ratio * 2 - 1) <= tolerance:
        return np.sort(np.concatenate([beats, (beats[:-1] + beats[1:]) / 2]))
    return None


def find_grid(
    mono: np.ndarray, sr: int, p: GridParams, hand_bpm: float | None = None, hand_meter: str | None = None
) -> Grid:
    """The recording's grid (see the module docstring)."""
    bpm, ticks, confidence, _, _ = _tracker()(mono.astype(np.float32))
    beats = np.asarray(ticks, dtype=np.float64)
    confidence = round(float(confidence), 3)

    def unreliable(why: str, at: np.ndarray = beats) -> Grid:
        return Grid(at, confidence, False, why, None, None, None, None, None)

    def beats_only(doubt: str, contrast: float | None = None) -> Grid:
        meter = hand_meter or None
        return Grid(beats, confidence, True, None, None, meter, "hand" if meter else None, None, contrast, doubt)

    if len(beats) < 8 or bpm <= 0:
        return unreliable(f"{len(beats)} beats found")
    if confidence < p.min_confidence:
        return unreliable(f"beat confidence {confidence} < recordings.grid.min_confidence {p.min_confidence:g}")
    beats = refine(mono, sr, beats)
    if hand_bpm is not None:
        conformed = conform(beats, hand_bpm, p.hand_bpm_tolerance)
        if conformed is None:
            return unreliable(f"the beats ({tempo_of(beats):.1f} BPM) disagree with the hand BPM {hand_bpm:g}")
        beats = conformed
    drift = drift_of(beats)
    if drift > p.max_drift:
        return unreliable(f"tempo drift {drift:.3f} > recordings.grid.max_drift {p.max_drift:g}", beats)
    hand_per_bar = beats_per_bar(hand_meter)
    if hand_meter and not hand_per_bar:
        return beats_only(f"a meter the grid cannot count ({hand_meter})")
    frames = spectral_frames(mono, sr)
    offbeat = offbeat_ratio(frames, sr, beats)
    if offbeat > OFFBEAT_MAX:
        return beats_only(f"the bass lands between the beats (ratio {offbeat:.2f}): they may be off-beats")
    chroma = beat_chroma(frames, sr, beats)
    found = sorted(((*downbeat_phase(chroma, g), g) for g in ((hand_per_bar,) if hand_per_bar else CANDIDATES)),
                   key=lambda t: t[1], reverse=True)  # fmt: skip
    phase, contrast, per_bar = found[0]
    # Without a hand meter, the winning bar length must also stand out from the other one's.
    clear = len(found) == 1 or contrast >= METER_MARGIN * found[1][1]
    if contrast < p.min_downbeat_contrast or not clear:
        return beats_only(f"downbeat contrast {contrast:.3f}" + ("" if clear else " (3 or 4 beats a bar unclear)"),
                          round(contrast, 3))  # fmt: skip
    meter = hand_meter or f"{per_bar}/4"
    return Grid(beats, confidence, True, None, per_bar, meter, "hand" if hand_meter else "audio", phase,
                round(contrast, 3))  # fmt: skip
