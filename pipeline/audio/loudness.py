"""ITU-R BS.1770 loudness (pyloudnorm), true peak, and a true-peak limiter.

pyloudnorm's own normalize can push peaks past full scale; here gain changes go
through `limit_true_peak`, which keeps a ceiling measured on a 4x-oversampled
signal (BS.1770-4 Annex 2), so a normalised file never clips.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pyloudnorm
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import firwin, lfilter, upfirdn

from pipeline.audio import kernels

OVERSAMPLE = 4
BLOCK_S = 0.4  # BS.1770 gating block
SILENCE = float("-inf")
_G = (1.0, 1.0, 1.0, 1.41, 1.41)  # BS.1770 channel weights, as pyloudnorm
_ABS_GATE = -70.0
TP_BLOCK = 1 << 13  # frames per oversampled block
# Interpolation filter for true peak, sized as BS.1770-4 Annex 2 (about 12 taps per phase).
# An odd length gives a whole-sample delay, so the 4x grid keeps the original sample
# instants (an even length shifts it by 1/8 sample and under-reads crests there).
_TP_TAPS = (firwin(49, 1 / OVERSAMPLE, window=("kaiser", 6.0)) * OVERSAMPLE).astype(np.float32)
TP_PAD = len(_TP_TAPS)  # frames of context each side of an oversampled block
# upfirdn's polyphase layout: per phase its taps, flipped (the taps padded to a multiple of the phases).
_TP_PHASES = np.ascontiguousarray(np.pad(_TP_TAPS, (0, -len(_TP_TAPS) % OVERSAMPLE)).reshape(-1, OVERSAMPLE).T[:, ::-1])
# No interpolated sample can exceed the input's peak times this (the largest phase's sum of |taps|):
# blocks whose sample peak times this stays under a threshold need no oversampling.
TP_BOUND = float(max(np.abs(_TP_TAPS[p::OVERSAMPLE]).sum() for p in range(OVERSAMPLE)))
assert (TP_PAD - 1) // 2 % OVERSAMPLE == 0  # the delay is whole input frames: input frame i is output phase 0


@functools.cache
def _meter(sample_rate: int) -> pyloudnorm.Meter:
    return pyloudnorm.Meter(sample_rate)


def integrated_lufs(x: np.ndarray, sample_rate: int) -> float:
    """Gated integrated loudness of (frames, channels) audio; -inf for silence.

    pyloudnorm's Meter.integrated_loudness, value for value: the same K-weighting
    (`k_weighted`), the same block sums (`block_mean_squares`) and gating (`gated_loudness`),
    without its per-block Python lists (a 20 s excerpt costs a fifth of the time)."""
    if len(x) < round(BLOCK_S * sample_rate):
        x = np.pad(x, ((0, round(BLOCK_S * sample_rate) - len(x)), (0, 0)))
    if not np.any(x):
        return SILENCE
    x = np.asarray(x)
    frames = x if x.ndim == 2 else x[:, None]
    value = gated_loudness(block_mean_squares(k_weighted(frames, sample_rate), sample_rate))
    return value if np.isfinite(value) else SILENCE


@functools.cache
def _k_stages(sample_rate: int) -> tuple[tuple[np.ndarray, np.ndarray, float], ...]:
    """pyloudnorm's K-weighting stages, in its order: (b, a, passband gain) each."""
    return tuple((f.b, f.a, f.passband_gain) for f in _meter(sample_rate)._filters.values())


@functools.cache
def _k_coefs(sample_rate: int) -> np.ndarray | None:
    """The stages as kernels.biquads rows (b0, b1, b2, a1, a2, gain), or None if they are not two
    normalised biquads (then lfilter runs them)."""
    stages = _k_stages(sample_rate)
    if len(stages) != 2 or any(len(b) != 3 or len(a) != 3 or a[0] != 1.0 for b, a, _ in stages):
        return None
    return np.array([[*b, a[1], a[2], gain] for b, a, gain in stages], dtype=np.float64)


def k_state(channels: int) -> np.ndarray:
    """The K-weighting filters' state at rest, for `k_weighted` to carry along a stream."""
    return np.zeros((channels, 2, 2))


def k_weighted(x: np.ndarray, sample_rate: int, state: np.ndarray | None = None) -> np.ndarray:
    """pyloudnorm's K-weighting of (frames, channels) audio, as (channels, frames) float64: per stage
    gain * lfilter(b, a, .), bit for bit; `state` (from `k_state`) carries the filters across
    consecutive pieces of a stream (updated in place)."""
    state = k_state(x.shape[1]) if state is None else state
    coefs, kernel = _k_coefs(sample_rate), kernels.biquads()
    if coefs is not None and kernel is not None:
        out = np.empty((x.shape[1], len(x)))
        kernel(x, coefs, state, out)
        return out
    out = np.ascontiguousarray(x.T, dtype=np.float64)
    for s, (b, a, gain) in enumerate(_k_stages(sample_rate)):
        for ch in range(len(out)):
            y, state[ch, s] = lfilter(b, a, out[ch], zi=state[ch, s])
            out[ch] = gain * y
    return out


def block_bounds(j: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames [lower, upper) of gating blocks j, computed as pyloudnorm computes them."""
    j = np.asarray(j, dtype=np.int64)
    if len(j) and j[0] == 0 and j[-1] == len(j) - 1:  # blocks 0 .. k - 1: the same for every signal
        return _first_blocks(len(j), sample_rate)
    return _bounds_of(tuple(j.tolist()), sample_rate)


@functools.lru_cache(maxsize=64)
def _first_blocks(k: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    return _bounds_of(tuple(range(k)), sample_rate)


def _bounds_of(j: tuple[int, ...], sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    meter = _meter(sample_rate)
    t, step = meter.block_size, 1.0 - meter.overlap
    lower = np.array([int(t * (k * step) * sample_rate) for k in j], dtype=np.int64)
    upper = np.array([int(t * (k * step + 1) * sample_rate) for k in j], dtype=np.int64)
    lower.flags.writeable = upper.flags.writeable = False  # shared by the cache
    return lower, upper


def block_count(frames: int, sample_rate: int) -> int:
    """How many gating blocks pyloudnorm takes from `frames` frames (the last may run past the end)."""
    meter = _meter(sample_rate)
    t, step = meter.block_size, 1.0 - meter.overlap
    return int(np.round((frames / sample_rate - t) / (t * step))) + 1


def block_mean_squares(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean square of each 400 ms gating block of K-weighted rows y: (channels, blocks), each an np.sum
    over the block's squares as pyloudnorm takes it (numpy's pairwise sum of a contiguous run)."""
    lower, upper = block_bounds(np.arange(block_count(y.shape[1], sample_rate)), sample_rate)
    return (1.0 / (_meter(sample_rate).block_size * sample_rate)) * square_sums(y, lower, upper)


def square_sums(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """(channels, blocks): np.sum(np.square(y[c, lower[j]:upper[j]])) each (numpy's pairwise sum of a
    contiguous run of squares)."""
    z = np.empty((len(y), len(lower)))
    kernel = kernels.block_sums()
    if kernel is not None:
        kernel(y, np.ascontiguousarray(lower, dtype=np.int64), np.ascontiguousarray(upper, dtype=np.int64), z)
        return z
    sq = np.square(y)
    for ch in range(len(sq)):
        z[ch] = [np.sum(sq[ch, lo:hi]) for lo, hi in zip(lower.tolist(), upper.tolist(), strict=True)]
    return z


def gated_loudness(z: np.ndarray) -> float:
    """pyloudnorm's gating of the blocks' mean squares z (channels, blocks), in its order of operations."""
    channels = len(z)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # the mean of no blocks, as pyloudnorm
        power = z[0] * _G[0]
        for i in range(1, channels):
            power = power + _G[i] * z[i]
        levels = -0.691 + 10.0 * np.log10(power)
        keep = levels >= _ABS_GATE
        mean = [np.mean(z[i, keep]) for i in range(channels)]
        relative = -0.691 + 10.0 * np.log10(np.sum([_G[i] * mean[i] for i in range(channels)])) - 10.0
        keep = (levels > relative) & (levels > _ABS_GATE)
        mean = np.nan_to_num(np.array([np.mean(z[i, keep]) for i in range(channels)]))
        return float(-0.691 + 10.0 * np.log10(np.sum([_G[i] * mean[i] for i in range(channels)])))


def peak_envelope(x: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Per sample, the largest |value| of the 4x-oversampled signal around it.

    Exact wherever it can exceed `floor`; elsewhere it may fall back to the sample
    peak (still at most `floor`). Scales linearly with gain: env(g*x) = g*env(x).
    """
    xt = np.ascontiguousarray(np.asarray(x, dtype=np.float32).T)  # channels first: contiguous rows
    return envelope_range(xt, 0, xt.shape[1], 0, xt.shape[1], floor)


def envelope_range(xt: np.ndarray, offset: int, n: int, a: int, b: int, floor: float) -> np.ndarray:
    """peak_envelope's values for frames [a, b) of an n-frame signal, from part of it.

    `xt` (channels, frames) holds frames [offset, offset + width) and must cover
    [a - TP_PAD, b + TP_PAD) within [0, n); `a` is a multiple of TP_BLOCK and `b` one
    or n. The oversampled blocks are the ones peak_envelope picks, so the values
    equal its values exactly (a stream can be measured piece by piece).
    """
    out = np.abs(xt[:, a - offset : b - offset]).max(axis=0)
    if b <= a:
        return out
    n_blocks = -(-(b - a) // TP_BLOCK)
    block_peaks = np.pad(out, (0, n_blocks * TP_BLOCK - (b - a))).reshape(n_blocks, TP_BLOCK).max(axis=1)
    oversample_into(out, xt, offset, n, a, b, np.flatnonzero(block_peaks * TP_BOUND > floor))
    return out


def oversample_into(out: np.ndarray, xt: np.ndarray, offset: int, n: int, a: int, b: int, blocks) -> None:
    """out (frames [a, b)) = max(out, the 4x-oversampled peak) on the given blocks (indices from a)."""
    if len(blocks) * 2 > -(-(b - a) // TP_BLOCK):  # most of the range: one pass over all of it
        env = _oversampled(xt, offset, n, a, b)
        for i in blocks:
            lo, hi = int(i) * TP_BLOCK, min(b - a, (int(i) + 1) * TP_BLOCK)
            np.maximum(out[lo:hi], env[lo:hi], out=out[lo:hi])
        return
    for i in blocks:
        start = a + int(i) * TP_BLOCK
        stop = min(b, start + TP_BLOCK)
        env = oversampled_block(xt, offset, n, start)
        out[start - a : stop - a] = np.maximum(out[start - a : stop - a], env[: stop - start])


def oversampled_block(xt: np.ndarray, offset: int, n: int, start: int) -> np.ndarray:
    """The 4x-oversampled peak per input sample of the block of frames at `start` (TP_BLOCK long, or to n)."""
    return _oversampled(xt, offset, n, start, min(n, start + TP_BLOCK))


def _oversampled(xt: np.ndarray, offset: int, n: int, a: int, b: int) -> np.ndarray:
    """The 4x-oversampled peak of frames [a, b), from the frames TP_PAD around them (zeros past the ends).
    Every value depends only on its neighbourhood, so any range gives the same values as peak_envelope's blocks."""
    pad, delay = TP_PAD, (TP_PAD - 1) // 2
    lo, hi = max(0, a - pad), min(n, b + pad)
    fused = kernels.envelope()
    if fused is not None:  # the same sums, reduced as they are made
        length = hi - lo
        padded = _zero_padded(xt[:, lo - offset : hi - offset])
        env = np.empty(b - a, dtype=np.float32)
        fused(padded, _TP_PHASES, a - lo + delay // OVERSAMPLE, (length - 1) * OVERSAMPLE + len(_TP_TAPS), env)
        return env
    up = _upsample(xt[:, lo - offset : hi - offset])
    peak = np.abs(up[0])
    for row in up[1:]:
        np.maximum(peak, np.abs(row), out=peak)
    # Align with the input's samples: input frame i takes the 4x samples [4i, 4i + 4) after the delay.
    first, last = (a - lo) * OVERSAMPLE + delay, (b - lo) * OVERSAMPLE + delay
    peak = peak[first:last]
    if len(peak) < last - first:  # past the filter's output (never for the taps used): pad as zeros
        peak = np.pad(peak, (0, last - first - len(peak)))
    env = peak[0::OVERSAMPLE]  # a max over phases, pairwise (exact, faster than a reduction over 4)
    for phase in range(1, OVERSAMPLE):
        env = np.maximum(env, peak[phase::OVERSAMPLE])
    return env


_UPFIRDN_FRAMES = 4 * TP_BLOCK  # past this, scipy's C loop beats the whole-array sums (cache-bound)


def _upsample(x: np.ndarray) -> np.ndarray:
    """upfirdn(_TP_TAPS, x, up=OVERSAMPLE, axis=-1), bit for bit: each output is the same float32 sum of
    products in the same order (oldest sample first, starting from 0): whole-array sums for short
    blocks, upfirdn itself for long ones. The path without numba (with it, kernels.envelope sums the
    same products and keeps only the envelope)."""
    length = x.shape[1]
    if length > _UPFIRDN_FRAMES:
        return upfirdn(_TP_TAPS, np.ascontiguousarray(x, dtype=np.float32), up=OVERSAMPLE, axis=-1)
    return _upsample_arrays(_zero_padded(x), length + _TP_PHASES.shape[1] - 1)


def _zero_padded(x: np.ndarray) -> np.ndarray:
    """x (channels, frames) as float32 with taps - 1 zeros each side: the polyphase sums' input."""
    taps = _TP_PHASES.shape[1]
    padded = np.zeros((x.shape[0], x.shape[1] + 2 * (taps - 1)), dtype=np.float32)
    padded[:, taps - 1 : taps - 1 + x.shape[1]] = x
    return padded


def _upsample_arrays(padded: np.ndarray, width: int) -> np.ndarray:
    """_upsample as whole-array numpy operations: each tap's products added in turn to every output."""
    channels, taps = padded.shape[0], _TP_PHASES.shape[1]
    out = np.empty((channels, width, OVERSAMPLE), dtype=np.float32)
    term = np.empty((channels, width), dtype=np.float32)
    for phase in range(OVERSAMPLE):
        acc = np.zeros((channels, width), dtype=np.float32)
        for k in range(taps):
            np.multiply(padded[:, k : k + width], _TP_PHASES[phase, k], out=term)
            acc += term
        out[:, :, phase] = acc
    length = width - taps + 1
    return out.reshape(channels, -1)[:, : (length - 1) * OVERSAMPLE + len(_TP_TAPS)]


def true_peak_dbtp(x: np.ndarray) -> float:
    if not len(x) or not np.any(x):
        return SILENCE
    return to_db(peak_envelope(x, floor=float(np.abs(x).max())).max())


def to_db(gain: float) -> float:
    return float(20 * np.log10(gain)) if gain > 0 else SILENCE


def db_to_gain(db: float) -> float:
    return float(10 ** (db / 20))


def limit_true_peak(
    x: np.ndarray, sample_rate: int, ceiling_dbtp: float, release_ms: float = 50.0, envelope: np.ndarray | None = None
) -> tuple[np.ndarray, bool, float]:
    """Lookahead limiter: (audio with true peak at most the ceiling, whether it acted, its true peak dBTP).

    The gain needed at each sample is taken as a minimum over a lookahead window
    and then averaged over the same window, which ramps the gain down before a
    peak and never above what any sample needs; a held, averaged release lets it
    recover smoothly. `envelope` may be passed if already known: it must be exact
    where it exceeds min(ceiling, sample peak) (see peak_envelope).
    """
    ceiling = db_to_gain(ceiling_dbtp)
    if envelope is None:  # exact wherever it could matter for the gain or for the peak itself
        envelope = peak_envelope(x, floor=min(ceiling, float(np.abs(x).max(initial=0.0))))
    env = envelope
    if env.max(initial=0.0) <= ceiling:
        return x, False, to_db(env.max(initial=0.0))
    gain = limiter_gain(env, sample_rate, ceiling_dbtp, release_ms)
    y = (x * gain[:, None]).astype(x.dtype)
    # Interpolation between the gain curve's samples can leave a hair over the ceiling.
    peak = true_peak_dbtp(y)
    if peak > ceiling_dbtp:
        y = (y * db_to_gain(ceiling_dbtp - peak - 0.01)).astype(x.dtype)
        peak = true_peak_dbtp(y)
    return y, True, peak


def limiter_windows(sample_rate: int, release_ms: float) -> tuple[int, int]:
    """The limiter's lookahead and release windows, in frames."""
    return max(1, round(0.0015 * sample_rate)), max(1, round(release_ms / 1000 * sample_rate))


def limiter_gain(env: np.ndarray, sample_rate: int, ceiling_dbtp: float, release_ms: float) -> np.ndarray:
    """limit_true_peak's gain curve for a whole signal's true-peak envelope (pipeline.audio.stream streams it)."""
    need = np.minimum(1.0, db_to_gain(ceiling_dbtp) / np.maximum(env, 1e-12))
    look, rel = limiter_windows(sample_rate, release_ms)
    # scipy's origin o puts a size-s window at [n - s//2 - o, n + (s-1)//2 - o].
    ahead = minimum_filter1d(need, size=look, origin=-(look // 2))  # min over [n, n + look)
    smooth = np.minimum(need, uniform_filter1d(ahead, size=look, origin=(look - 1) // 2))  # mean over (n - look, n]
    held = minimum_filter1d(smooth, size=rel, origin=(rel - 1) // 2)  # hold over (n - rel, n]
    return np.minimum(smooth, uniform_filter1d(held, size=rel, origin=(rel - 1) // 2))
