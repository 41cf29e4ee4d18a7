"""ITU-R BS.1770 loudness (pyloudnorm), true peak, and a true-peak limiter.

pyloudnorm's own normalize can push peaks past full scale; here gain changes go
through `limit_true_peak`, which keeps a ceiling measured on a 4x-oversampled
signal (BS.1770-4 Annex 2), so a normalised file never clips.
"""

from __future__ import annotations

import functools

import numpy as np
import pyloudnorm
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import firwin, upfirdn

OVERSAMPLE = 4
BLOCK_S = 0.4  # BS.1770 gating block
SILENCE = float("-inf")
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


@functools.cache
def _meter(sample_rate: int) -> pyloudnorm.Meter:
    return pyloudnorm.Meter(sample_rate)


def integrated_lufs(x: np.ndarray, sample_rate: int) -> float:
    """Gated integrated loudness of (frames, channels) audio; -inf for silence."""
    if len(x) < round(BLOCK_S * sample_rate):
        x = np.pad(x, ((0, round(BLOCK_S * sample_rate) - len(x)), (0, 0)))
    if not np.any(x):
        return SILENCE
    value = float(_meter(sample_rate).integrated_loudness(x.astype(np.float64)))
    return value if np.isfinite(value) else SILENCE


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
_TILE = 512  # outputs per phase summed at a time by the compiled kernel (its accumulator stays in L1)


def _upsample(x: np.ndarray) -> np.ndarray:
    """upfirdn(_TP_TAPS, x, up=OVERSAMPLE, axis=-1), bit for bit: each output is the same float32 sum of
    products in the same order (oldest sample first, starting from 0). The compiled kernel (numba) is
    several times faster than either fallback: whole-array sums for short blocks, upfirdn for long ones."""
    channels, length = x.shape
    polyphase = _compile_polyphase()
    if polyphase is None and length > _UPFIRDN_FRAMES:
        return upfirdn(_TP_TAPS, np.ascontiguousarray(x, dtype=np.float32), up=OVERSAMPLE, axis=-1)
    taps = _TP_PHASES.shape[1]
    padded = np.zeros((channels, length + 2 * (taps - 1)), dtype=np.float32)
    padded[:, taps - 1 : taps - 1 + length] = x
    width = length + taps - 1
    if polyphase is None:
        return _upsample_arrays(padded, width)
    out = np.empty((channels, width * OVERSAMPLE), dtype=np.float32)
    polyphase(padded, _TP_PHASES, out)
    return out[:, : (length - 1) * OVERSAMPLE + len(_TP_TAPS)]


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


@functools.cache
def _compile_polyphase():
    """The polyphase sums as a compiled loop, in upfirdn's order: for each tile of outputs, the taps are
    added one after another (the products and sums rounded to float32 each, no fused multiply-add), and
    the loop over the tile's independent outputs vectorises. None when numba is not installed. Built on
    first use, so processes that never oversample do not load numba (about 100 MB)."""
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(cache=True, nogil=True, fastmath=False)
    def polyphase(padded, phases, out):  # pragma: no cover (compiled)
        channels, plen = padded.shape
        n_phase, taps = phases.shape
        width = plen - taps + 1
        acc = np.empty(_TILE, dtype=np.float32)
        for c in range(channels):
            for p in range(n_phase):
                for t0 in range(0, width, _TILE):
                    m = min(width, t0 + _TILE) - t0
                    for i in range(m):
                        acc[i] = np.float32(0.0)
                    for k in range(taps):
                        h = phases[p, k]
                        row = padded[c, t0 + k : t0 + k + m]
                        for i in range(m):
                            acc[i] = acc[i] + row[i] * h
                    for i in range(m):
                        out[c, (t0 + i) * n_phase + p] = acc[i]

    return polyphase


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
