"""Timbre adjectives (bright, warm, wide, punchy, gritty, ...) measured from a stem's audio.

Every adjective a prompt states about a sound comes from a number measured here and
a threshold in `TimbreThresholds`. Measurements use only the audible part of the
stem: frames more than `GATE_DB` below the loudest frame are left out, so a sparse
track is judged by its notes, not by its silence, and padding a stem with silence
does not change what it is called. Spectral measures are energy-weighted over the
frames (loud moments count more than decaying tails).

The features, for stereo float audio (frames, 2):

- `centroid_hz`: spectral centroid (magnitude-weighted, per frame), the usual
  correlate of brightness.
- `rolloff_hz`: the frequency below which 85 % of the energy lies.
- `sub_share`, `low_mid_share`, `air_share`: shares of the energy in 20-60 Hz
  (sub-bass), 150-500 Hz (the low mids that make a sound warm or full) and above
  8 kHz (air). Shares of the whole spectrum, so they add up with the rest to 1.
- `channel_correlation`: Pearson correlation of left and right (1 for mono, also a
  mono source panned anywhere; about 0 for unrelated channels; negative for
  out-of-phase ones). A source hard-panned to one side (the other channel more than
  30 dB down) is a point source and counts as 1. `side_share`: side energy
  ((L-R)/2) over mid plus side.
- `crest_db`: sample peak over the RMS of the audible frames.
- `punch_db`: how far the loud moments stand out from their surroundings: for
  10 ms windows (every 5 ms), the energy-weighted mean of the window's energy over
  the mean energy of the +-200 ms around it, in dB. Sustained sounds read ~0 dB,
  drum parts 5-10 dB.
- `loudness_range_db`: spread of the 3 s short-term level (10th to 95th percentile
  of the windows within 20 dB of the mean, as EBU R128's LRA, without K-weighting).
- `noisiness`: spectral flatness (geometric over arithmetic mean of the power) in
  bands of 32 bins (~690 Hz), energy-weighted: 0 for a pure tone, ~0.59 for white
  noise (0.78 with unrelated noise in each channel). Hi-hats read ~0.54, pitched
  instruments below 0.2 (dense low voicings up to 0.35).
- `saturation`: share of the samples within 2 % of their 46 ms block's peak
  (energy-weighted over blocks and channels). A clipped or hard-driven waveform
  spends its time at its peak (flat tops): a hard-clipped sine reads ~0.9, a clean
  sine 0.13, a tanh-saturated sine ~0.2, a sawtooth or an acoustic sound < 0.05.
- `upper_partial_share`: per frame, the share of the energy at or above 4.5 times
  the lowest strong partial (within 20 dB of the frame's strongest bin): the
  tristimulus T3 (energy in harmonics 5 and up) without a pitch tracker. A
  distorted guitar pushes its energy into high harmonics (~0.55-0.6 for a low riff
  on GM 29/30); a nylon guitar, a sawtooth or a sine stay below ~0.15.
- `partial_density`: strong partials (local spectral peaks within 30 dB of the
  frame's strongest bin) per kHz in 1-5 kHz. Distortion fills the presence band
  with many strong partials; a piano chord, whose upper partials die away, has few.
- `grit`: max(saturation, upper_partial_share * min(1, partial_density /
  DENSE_PARTIALS_PER_KHZ)): either trace of distortion, a saturated waveform
  (digital clipping, drive effects) or a dense, strong upper-partial spectrum (an
  amp-and-cabinet distortion, whose filtered waveform is no longer flat-topped).

Caveats, measured on the GM SoundFont: `upper_partial_share` is taken relative to
the lowest note, so a wide voicing (a low bass note under high chords) counts the
chord's partials as "upper"; the density factor keeps wide piano, string and organ
voicings below the gritty threshold, but a bright, dense section voicing (brass or
accordion spanning three octaves) can still read as gritty. The other way round,
a soundfont's distortion guitar played high has few partials left below the
cabinet's roll-off: GM 29/30 single-note lines around E4 read 0.07-0.16 and are
called clean, around E3 0.29-0.34 (neither); only their low riffs and power chords
read gritty. Where the patch is known to be distorted, trust the patch over "clean".
A stem of one instrument is what these measures are made for; a full mix mixes all
of this (the sample's mixes read grit 0.12-0.22).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import scipy.fft
from scipy.ndimage import uniform_filter1d

from pipeline.analysis.thresholds import TimbreThresholds

GATE_DB = 40.0  # frames this far below the loudest frame are not analysed
FLOOR_DBFS = -100.0  # frames below this RMS are silence whatever the loudest frame
SUB_HZ = (20.0, 60.0)
LOW_MID_HZ = (150.0, 500.0)
AIR_HZ = 8000.0
ROLLOFF = 0.85
HARD_PAN_DB = 30.0  # one channel this far below the other: a mono source panned hard
PUNCH_BLOCK_S = 0.010
PUNCH_CONTEXT_S = 0.4  # the surroundings a 10 ms block is compared with (centred)
LRA_WINDOW_S = 3.0
LRA_GATE_DB = 20.0
NOISE_BAND_BINS = 32  # noisiness: flatness in bands this many bins wide (~690 Hz at 44.1 kHz)
SATURATION_LEVEL = 0.98  # "at the peak": within 2 % of the block's peak
STRONG_PARTIAL_DB = 20.0  # the lowest partial this close to the strongest anchors upper_partial_share
UPPER_HARMONIC = 4.5  # at or above the 5th harmonic of the lowest strong partial
DENSITY_BAND_HZ = (1000.0, 5000.0)
DENSITY_PEAK_DB = 30.0
DENSE_PARTIALS_PER_KHZ = 9.0  # chosen to separate GM 29/30 low riffs from clean GM sounds best
_CHUNK_FRAMES = 512


# Every adjective timbre_tags can return. Opposites: bright/dark, wide/mono, gritty/clean.
TIMBRE_TAGS: tuple[str, ...] = (
    "airy",
    "bright",
    "clean",
    "dark",
    "dynamic",
    "gritty",
    "mono",
    "punchy",
    "sub-heavy",
    "warm",
    "wide",
)


@dataclass(frozen=True)
class TimbreFeatures:
    active_s: float  # seconds of audible audio analysed (0: silence, every other field 0)
    centroid_hz: float
    rolloff_hz: float
    sub_share: float
    low_mid_share: float
    air_share: float
    channel_correlation: float
    side_share: float
    crest_db: float
    punch_db: float
    loudness_range_db: float
    noisiness: float
    saturation: float
    upper_partial_share: float
    partial_density: float
    grit: float


def frame_length(sample_rate: int) -> int:
    """The power of two nearest 46 ms (2048 at 44.1 and 48 kHz); hops are half of it."""
    return int(2 ** round(np.log2(0.0464 * sample_rate)))


def _stereo(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] not in (1, 2):
        raise ValueError(f"audio must be (frames,) or (frames, 1|2), got {x.shape}")
    return np.repeat(x, 2, axis=1) if x.shape[1] == 1 else x


def _silent() -> TimbreFeatures:
    values = {f.name: 0.0 for f in fields(TimbreFeatures)}
    values["channel_correlation"] = 1.0
    return TimbreFeatures(**values)


def _wmean(values: np.ndarray, weights: np.ndarray) -> float:
    total = float(weights.sum())
    return float((values * weights).sum() / total) if total > 0 else 0.0


def _db(ratio: float) -> float:
    return float(10 * np.log10(ratio)) if ratio > 0 else 0.0


def timbre_features(x: np.ndarray, sample_rate: int) -> TimbreFeatures:
    """Measure a stem (float audio, (frames, 2); mono is accepted and duplicated)."""
    x = _stereo(x)
    n_fft = frame_length(sample_rate)
    hop = n_fft // 2
    n_frames = max(1, -(-max(len(x) - n_fft, 0) // hop) + 1)
    x = np.pad(x, ((0, (n_frames - 1) * hop + n_fft - len(x)), (0, 0)))
    power = np.einsum("ij,ij->i", x, x)  # per sample, both channels
    # Frame energies from half-frame sums: the gate without framing the audio twice.
    halves = power.reshape(-1, hop).sum(axis=1, dtype=np.float64)
    energy = halves[:-1] + halves[1:]
    loudest = float(energy.max())
    floor = 2 * n_fft * 10 ** (FLOOR_DBFS / 10)
    if loudest <= floor:
        return _silent()
    active = np.flatnonzero((energy >= loudest * 10 ** (-GATE_DB / 10)) & (energy > floor))

    spectral = _spectral(x, active, n_fft, hop, sample_rate)
    if spectral is None:  # a click so short that the analysis window never sees it
        return _silent()
    block = _blocks(power, sample_rate)
    saturation = _saturation(x, power, n_fft, loudest * 10 ** (-GATE_DB / 10))
    mean_square = float(energy[active].sum()) / (len(active) * 2 * n_fft)
    crest = _db(float(np.abs(x).max()) ** 2 / mean_square)
    grit = max(saturation, spectral.pop("spectral_grit"))
    return TimbreFeatures(
        active_s=round(len(active) * hop / sample_rate, 3),
        centroid_hz=round(spectral["centroid_hz"], 1),
        rolloff_hz=round(spectral["rolloff_hz"], 1),
        sub_share=round(spectral["sub_share"], 4),
        low_mid_share=round(spectral["low_mid_share"], 4),
        air_share=round(spectral["air_share"], 4),
        channel_correlation=round(spectral["channel_correlation"], 4),
        side_share=round(spectral["side_share"], 4),
        crest_db=round(crest, 2),
        punch_db=round(block["punch_db"], 2),
        loudness_range_db=round(block["loudness_range_db"], 2),
        noisiness=round(spectral["noisiness"], 4),
        saturation=round(saturation, 4),
        upper_partial_share=round(spectral["upper_partial_share"], 4),
        partial_density=round(spectral["partial_density"], 3),
        grit=round(grit, 4),
    )


def _spectral(x: np.ndarray, active: np.ndarray, n_fft: int, hop: int, sample_rate: int) -> dict[str, float] | None:
    """STFT features of the active frames, in chunks (bounded memory); None if they hold no energy."""
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    freqs32 = freqs.astype(np.float32)
    n_bins = len(freqs)
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    n_bands = (n_bins - 1) // NOISE_BAND_BINS
    lo_d, hi_d = np.searchsorted(freqs, DENSITY_BAND_HZ)
    density_khz = (DENSITY_BAND_HZ[1] - DENSITY_BAND_HZ[0]) / 1000
    first_ok = int(np.searchsorted(freqs, 30.0))  # partials below 30 Hz do not anchor upper_partial_share
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=0)[::hop]  # (n_frames, 2, n_fft), a view

    spectrum = np.zeros(n_bins)
    cross = left = right = noise_num = noise_den = 0.0
    per_frame: dict[str, list[np.ndarray]] = {k: [] for k in ("energy", "centroid", "upper", "density", "grit")}
    for i in range(0, len(active), _CHUNK_FRAMES):
        spec = scipy.fft.rfft(frames[active[i : i + _CHUNK_FRAMES]] * window, axis=-1)
        lch, rch = np.ascontiguousarray(spec[:, 0]), np.ascontiguousarray(spec[:, 1])
        pl = lch.real**2 + lch.imag**2
        pr = rch.real**2 + rch.imag**2
        power = (pl + pr) * 0.5  # (frames, bins), float32
        spectrum += power.sum(axis=0)
        cross += float((lch.real * rch.real + lch.imag * rch.imag).sum())
        left += float(pl.sum())
        right += float(pr.sum())
        energy = power.sum(axis=1).astype(np.float64)
        mag = np.sqrt(power)
        per_frame["energy"].append(energy)
        per_frame["centroid"].append((mag @ freqs32) / np.maximum(mag.sum(axis=1), 1e-30))
        # Noisiness: flatness per band of NOISE_BAND_BINS bins, weighted by the band's energy.
        bands = power[:, 1 : 1 + n_bands * NOISE_BAND_BINS].reshape(len(power), n_bands, NOISE_BAND_BINS) + 1e-20
        band_mean = bands.mean(axis=2)
        flat = np.exp(np.log(bands).mean(axis=2)) / band_mean
        noise_num += float((flat * band_mean).sum())
        noise_den += float(band_mean.sum())
        # Partials: local maxima of the frame's power spectrum.
        peak = np.zeros(power.shape, dtype=bool)
        peak[:, 1:-1] = (power[:, 1:-1] > power[:, :-2]) & (power[:, 1:-1] >= power[:, 2:])
        top = power.max(axis=1, keepdims=True)
        strong = peak[:, first_ok:] & (power[:, first_ok:] >= top * 10 ** (-STRONG_PARTIAL_DB / 10))
        lowest = np.where(strong.any(axis=1), np.argmax(strong, axis=1) + first_ok, n_bins)
        cut = np.minimum(np.ceil(UPPER_HARMONIC * lowest).astype(int), n_bins)
        below = np.cumsum(power, axis=1)  # energy up to and including each bin
        above = below[:, -1] - np.where(cut > 0, below[np.arange(len(power)), np.maximum(cut - 1, 0)], 0.0)
        upper = np.clip(above / np.maximum(below[:, -1], 1e-30), 0.0, 1.0)
        dense = peak[:, lo_d:hi_d] & (power[:, lo_d:hi_d] >= top * 10 ** (-DENSITY_PEAK_DB / 10))
        density = dense.sum(axis=1) / density_khz
        per_frame["upper"].append(upper)
        per_frame["density"].append(density)
        per_frame["grit"].append(upper * np.minimum(1.0, density / DENSE_PARTIALS_PER_KHZ))

    pf = {k: np.concatenate(v) for k, v in per_frame.items()}
    w = pf["energy"]
    total = float(spectrum.sum())
    if total <= 0 or left + right <= 0:
        return None

    def share(lo: float, hi: float) -> float:
        return float(spectrum[(freqs >= lo) & (freqs < hi)].sum()) / total

    rolloff = freqs[min(int(np.searchsorted(np.cumsum(spectrum), ROLLOFF * total)), n_bins - 1)]
    quiet, loud = sorted((left, right))
    hard_panned = quiet < loud * 10 ** (-HARD_PAN_DB / 10)
    correlation = 1.0 if hard_panned else cross / np.sqrt(left * right)
    # |L-R|^2 + |L+R|^2 = 2(|L|^2 + |R|^2); the side share is |L-R|^2 over that.
    side = (left + right - 2 * cross) / (2 * (left + right))
    return {
        "centroid_hz": _wmean(pf["centroid"], w),
        "rolloff_hz": float(rolloff),
        "sub_share": share(*SUB_HZ),
        "low_mid_share": share(*LOW_MID_HZ),
        "air_share": share(AIR_HZ, np.inf),
        "channel_correlation": float(np.clip(correlation, -1.0, 1.0)),
        "side_share": float(np.clip(side, 0.0, 1.0)),
        "noisiness": noise_num / noise_den if noise_den > 0 else 0.0,
        "upper_partial_share": _wmean(pf["upper"], w),
        "partial_density": _wmean(pf["density"], w),
        "spectral_grit": _wmean(pf["grit"], w),
    }


def _blocks(power: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Punch and loudness range from 10 ms windows every 5 ms (silence around the audio adds nothing)."""
    half = max(1, round(PUNCH_BLOCK_S * sample_rate / 2))
    n = len(power) // half
    if n < 2:
        return {"punch_db": 0.0, "loudness_range_db": 0.0}
    halves = power[: n * half].reshape(n, half).sum(axis=1, dtype=np.float64)
    e = (halves[:-1] + halves[1:]) / (2 * half)  # overlapping windows: a click is never split in two
    active = e >= e.max() * 10 ** (-GATE_DB / 10)
    hop_s = PUNCH_BLOCK_S / 2
    context = uniform_filter1d(e, round(PUNCH_CONTEXT_S / hop_s) | 1, mode="constant")
    ea = e[active]
    punch = _wmean(10 * np.log10(ea / np.maximum(context[active], 1e-30)), ea)

    first, last = np.flatnonzero(active)[[0, -1]]
    win = round(LRA_WINDOW_S / hop_s)
    step = round(0.1 / hop_s)
    short = uniform_filter1d(e, win, mode="constant")[first + win // 2 : last + 1 - win // 2 : step]
    short = short[short > 0]
    lra = 0.0
    if len(short):
        levels = 10 * np.log10(short)
        levels = levels[levels >= 10 * np.log10(short.mean()) - LRA_GATE_DB]
        lra = float(np.percentile(levels, 95) - np.percentile(levels, 10))
    return {"punch_db": punch, "loudness_range_db": lra}


def _saturation(x: np.ndarray, power: np.ndarray, n_fft: int, gate: float) -> float:
    """Share of samples at their block's peak, energy-weighted over the audible blocks and channels."""
    n = len(x) // n_fft
    energy = power[: n * n_fft].reshape(n, n_fft).sum(axis=1, dtype=np.float64)
    keep = np.flatnonzero(energy >= gate)
    num = den = 0.0
    for c in range(x.shape[1]):  # one channel at a time (a copy of one channel, not of both)
        blocks = np.abs(x[: n * n_fft, c]).reshape(n, n_fft)[keep]
        peak = blocks.max(axis=1, keepdims=True)
        at_peak = np.count_nonzero(blocks >= SATURATION_LEVEL * peak, axis=1) / n_fft
        e = np.einsum("ij,ij->i", blocks, blocks)
        num += float((at_peak * e).sum())
        den += float(e.sum())
    return num / den if den > 0 else 0.0


def timbre_tags(features: TimbreFeatures, thresholds: TimbreThresholds | None = None) -> list[str]:
    """The adjectives of TIMBRE_TAGS the measurements support, sorted; none for silence."""
    t = thresholds or TimbreThresholds()
    f = features
    if f.active_s <= 0:
        return []
    tags: set[str] = set()
    bright = f.centroid_hz >= t.bright_centroid_hz
    if bright:
        tags.add("bright")
    elif f.centroid_hz <= t.dark_centroid_hz:
        tags.add("dark")
    if f.low_mid_share >= t.warm_low_mid_share and not bright:
        tags.add("warm")
    if f.sub_share >= t.sub_heavy_share:
        tags.add("sub-heavy")
    if f.air_share >= t.airy_share:
        tags.add("airy")
    if f.channel_correlation >= t.mono_correlation:
        tags.add("mono")
    elif f.channel_correlation <= t.wide_correlation:
        tags.add("wide")
    if f.punch_db >= t.punchy_punch_db:
        tags.add("punchy")
    if f.noisiness < t.noisy_noisiness:  # grit is judged on pitched sounds only
        if f.grit >= t.gritty_grit:
            tags.add("gritty")
        elif f.grit <= t.clean_grit:
            tags.add("clean")
    if f.loudness_range_db >= t.dynamic_range_db:
        tags.add("dynamic")
    return sorted(tags)
