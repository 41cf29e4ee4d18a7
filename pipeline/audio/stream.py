"""loudness.py's measures and limiter on a stream: the same math, chunk by chunk, in bounded memory.

Every result equals the whole-signal one exactly (same filters, same float64
sums in the same order), so a song of any length costs a few chunks of memory:

- `LoudnessMeter`: pyloudnorm's integrated loudness. The K-weighting filters
  carry their state across chunks (lfilter's zi), and each 400 ms gating block's
  mean square is summed from the same filtered samples as pyloudnorm sums them.
- `TruePeakMeter`: true_peak_dbtp. Blocks are oversampled with the neighbours'
  frames as context; the ones that need oversampling are chosen against the
  running sample peak (a superset) and filtered against the final one at the end.
- `limit_gains`: limit_true_peak's gain curve. Its window minima are exact in any
  order; its running means repeat scipy's running sum (one float64 sum carried
  along the signal, reflected at the start), so each chunk continues it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np
import soundfile as sf
from scipy.ndimage import minimum_filter1d

from pipeline.audio.loudness import (
    BLOCK_S,
    SILENCE,
    TP_BLOCK,
    TP_BOUND,
    TP_PAD,
    _meter,
    block_bounds,
    block_count,
    db_to_gain,
    envelope_range,
    gated_loudness,
    k_state,
    k_weighted,
    limiter_gain,
    limiter_windows,
    oversample_into,
    oversampled_block,
    square_sums,
    to_db,
)

CHUNK = 1 << 18  # frames per chunk (~6 s at 44.1 kHz), a multiple of TP_BLOCK
MARGIN = 1.001  # on TP_BOUND, for float32 rounding in the interpolation


class LoudnessMeter:
    """integrated_lufs of audio fed in consecutive pieces of (frames, channels)."""

    def __init__(self, sample_rate: int, channels: int):
        meter = _meter(sample_rate)
        self.rate = sample_rate
        self.block_size, self.step = meter.block_size, 1.0 - meter.overlap
        self.state = k_state(channels)
        self.channels = channels
        self.n = 0
        self.nonzero = False
        self.buf = np.zeros((channels, 0))  # filtered samples from the next block's start on
        self.buf_start = 0
        self.j = 0  # next gating block
        self.z: list[np.ndarray] = []

    def _bounds(self, j: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        return block_bounds(np.atleast_1d(np.asarray(j, dtype=np.int64)), self.rate)

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x)
        if x.ndim == 1:
            x = x[:, None]
        if not len(x):
            return
        self.nonzero = self.nonzero or bool(np.any(x))
        y = k_weighted(x, self.rate, self.state)
        self.n += len(x)
        self.buf = np.concatenate([self.buf, y], axis=1)
        self._blocks(self.n, final=False)

    def _blocks(self, n: int, final: bool) -> None:
        """Mean squares of the gating blocks that end by frame n (final: all that start before it)."""
        if final:
            last = block_count(n, self.rate)
        else:  # a block ends at about 4 (j + 1) hops: look a few past the last one that fits
            last = self.j + int(max(0, n - self.buf_start) / (self.block_size * self.step * self.rate)) + 2
        if last <= self.j:
            return
        lower, upper = self._bounds(np.arange(self.j, last))
        ready = np.ones(len(lower), dtype=bool) if final else upper <= n
        k = int(np.argmin(ready)) if not ready.all() else len(ready)
        if k:
            lo, hi = lower[:k] - self.buf_start, np.minimum(upper[:k], n) - self.buf_start
            z = square_sums(self.buf, lo, hi)  # as pyloudnorm: pairwise float64 sums of squares
            self.z.append((1.0 / (self.block_size * self.rate)) * z)
            self.j += k
        if not final:
            start, _ = self._bounds(self.j)
            drop = int(start[0]) - self.buf_start
            if drop > 0:
                self.buf = self.buf[:, drop:]
                self.buf_start += drop

    def result(self) -> float:
        need = round(BLOCK_S * self.rate)
        if self.n < need:  # integrated_lufs pads short audio with silence
            self.add(np.zeros((need - self.n, self.channels)))
        if not self.nonzero:
            return SILENCE
        self._blocks(self.n, final=True)
        blocks = block_count(self.n, self.rate)
        z = np.concatenate(self.z, axis=1)[:, :blocks] if self.z else np.zeros((self.channels, 0))
        value = gated_loudness(z)
        return value if np.isfinite(value) else SILENCE


class TruePeakMeter:
    """true_peak_dbtp of an n-frame signal fed in consecutive pieces (multiples of TP_BLOCK frames but the last).

    With `floor`, peak_envelope(x, floor).max() instead (the blocks oversampled are those
    peak_envelope oversamples for that floor).
    """

    def __init__(self, n: int, floor: float | None = None):
        self.n = n
        self.floor = floor
        self.pos = 0
        self.held: np.ndarray | None = None
        self.held_start = 0
        self.left: np.ndarray | None = None
        self.running = 0.0
        self.peaks: list[np.ndarray] = []
        self.over: list[np.ndarray] = []

    def add(self, y: np.ndarray) -> None:
        yt = np.ascontiguousarray(np.asarray(y, dtype=np.float32).T)
        self.running = max(self.running, float(np.abs(yt).max(initial=0.0)))
        if self.held is not None:
            self._measure(yt[:, :TP_PAD])
        self.held, self.held_start = yt, self.pos
        self.pos += yt.shape[1]

    def _measure(self, right: np.ndarray) -> None:
        held = self.held
        assert held is not None
        left = held[:, :0] if self.left is None else self.left
        seg = np.concatenate([left, held, right], axis=1)
        offset, a, width = self.held_start - left.shape[1], self.held_start, held.shape[1]
        sample = np.abs(held).max(axis=0)
        n_blocks = -(-width // TP_BLOCK)
        peaks = np.pad(sample, (0, n_blocks * TP_BLOCK - width)).reshape(n_blocks, TP_BLOCK).max(axis=1)
        over = np.full(n_blocks, -1.0, dtype=np.float32)
        floor = self.running if self.floor is None else self.floor  # running: a superset of the final choice
        chosen = np.flatnonzero(peaks * TP_BOUND > floor)
        if len(chosen):
            env = sample.copy()
            oversample_into(env, seg, offset, self.n, a, a + width, chosen)
            env = np.pad(env, (0, n_blocks * TP_BLOCK - width)).reshape(n_blocks, TP_BLOCK).max(axis=1)
            over[chosen] = env[chosen]
        self.peaks.append(peaks)
        self.over.append(over)
        self.left = held[:, -TP_PAD:]

    def envelope_max(self) -> np.float32:
        """The largest value of the envelope (peak_envelope's with floor, or the exact one's)."""
        if self.held is not None:
            self._measure(self.held[:, :0])
            self.held = None
        if not self.peaks:
            return np.float32(0)
        peaks, over = np.concatenate(self.peaks), np.concatenate(self.over)
        top = peaks.max()
        chosen = over[peaks * TP_BOUND > (float(top) if self.floor is None else self.floor)]
        return np.float32(max(top, chosen.max(initial=np.float32(0))))

    def result(self) -> float:
        """true_peak_dbtp: -inf for silence."""
        top = self.envelope_max()
        return to_db(top) if top > 0 else SILENCE


def _window_min(seg: np.ndarray, size: int) -> np.ndarray:
    """out[i] = min(seg[i : i + size]) for every full window."""
    return minimum_filter1d(seg, size=size, origin=-(size // 2))[: len(seg) - size + 1]


class _CausalMin:
    """minimum_filter1d(v, size, origin=(size - 1) // 2) (min over (n - size, n], reflected at the start), streamed."""

    def __init__(self, size: int):
        self.size = size
        self.prev: np.ndarray | None = None

    def __call__(self, v: np.ndarray) -> np.ndarray:
        prev = v[: self.size - 1][::-1] if self.prev is None else self.prev
        line = np.concatenate([prev, v])
        self.prev = line[len(line) - (self.size - 1) :]
        return _window_min(line, self.size)


class _RunningMean:
    """uniform_filter1d(v, size, origin=(size - 1) // 2) (mean over (n - size, n], reflected at the start), streamed.

    scipy keeps one float64 running sum along the line (plus the entering value, minus
    the leaving one) and divides it by size; np.cumsum adds in the same order.
    """

    def __init__(self, size: int):
        self.size = size
        self.prev: np.ndarray | None = None
        self.total = 0.0

    def __call__(self, v: np.ndarray) -> np.ndarray:
        s = self.size
        v64 = v.astype(np.float64)
        if self.prev is None:
            line = np.concatenate([v64[: s - 1][::-1], v64])
            first = np.cumsum(line[:s])[-1]
            sums = np.cumsum(np.concatenate([[first], line[s:] - line[:-s]]))
        else:
            line = np.concatenate([self.prev, v64])
            sums = np.cumsum(np.concatenate([[self.total], line[s:] - line[:-s]]))[1:]
        self.prev, self.total = line[len(line) - s :], float(sums[-1])
        return (sums / s).astype(v.dtype)


EnvelopeAt = Callable[[int, int], np.ndarray]


def limit_gains(n: int, sample_rate: int, ceiling_dbtp: float, release_ms: float, env_at: EnvelopeAt) -> Iterator:
    """limiter_gain's curve for frames [s, s + CHUNK), s = 0, CHUNK, ...; env_at(a, b) gives the
    envelope of the signal to limit for frames [a, b) (a a multiple of TP_BLOCK, b <= n)."""
    look, rel = limiter_windows(sample_rate, release_ms)
    if n < max(look, rel) or n <= CHUNK:  # one piece (and scipy reflects short lines its own way)
        yield limiter_gain(env_at(0, n), sample_rate, ceiling_dbtp, release_ms)
        return
    ceiling = db_to_gain(ceiling_dbtp)
    mean_look, mean_rel, hold = _RunningMean(look), _RunningMean(rel), _CausalMin(rel)
    tail = None  # need for the look - 1 frames before the chunk
    for s in range(0, n, CHUNK):
        e, hi = min(n, s + CHUNK), min(n, s + CHUNK + TP_BLOCK)  # the window looks look - 1 < TP_BLOCK ahead
        need = np.minimum(1.0, ceiling / np.maximum(env_at(s, hi), 1e-12))
        ahead = need
        if hi == n:  # the end in sight: reflect past it, as minimum_filter1d's default mode
            full = need if tail is None else np.concatenate([tail, need])
            ahead = np.concatenate([full, full[::-1][: look - 1]])[len(full) - len(need) :]
        seg = ahead[: e - s + look - 1]
        tail = need[e - s - (look - 1) : e - s]
        smooth = np.minimum(need[: e - s], mean_look(_window_min(seg, look)))
        yield np.minimum(smooth, mean_rel(hold(smooth)))


class FrameReader:
    """Frames [a, b) of an audio file as float32 (frames, channels), read in order (a never decreases)."""

    def __init__(self, path: str):
        self.file = sf.SoundFile(path)
        self.n, self.channels = self.file.frames, self.file.channels
        self.buf = np.zeros((0, self.channels), dtype=np.float32)
        self.start = 0

    def __call__(self, a: int, b: int) -> np.ndarray:
        a, b = max(0, a), min(self.n, b)
        if a < self.start:
            raise ValueError(f"frames from {a} were already dropped (kept from {self.start})")
        end = self.start + len(self.buf)
        if a > end:  # skip ahead
            self.file.seek(a)
            self.buf, self.start, end = self.buf[:0], a, a
        if b > end:
            more = self.file.read(b - end, dtype="float32", always_2d=True)
            self.buf = np.concatenate([self.buf[a - self.start :], more])
        else:
            self.buf = self.buf[a - self.start :]
        self.start = a
        return self.buf[: b - a]

    def close(self) -> None:
        self.file.close()


class RawFile:
    """A float32 (frames, channels) scratch file: written in order, read back by frame range (no memory map,
    so the page cache holds it, not the process)."""

    def __init__(self, path: str, channels: int):
        self.path, self.channels = path, channels
        self.fh = open(path, "w+b")  # noqa: SIM115 (closed by close())
        self.frames = 0

    def write(self, x: np.ndarray) -> None:
        self.fh.write(np.ascontiguousarray(x, dtype=np.float32).tobytes())
        self.frames += len(x)

    def __call__(self, a: int, b: int) -> np.ndarray:
        a, b = max(0, a), min(self.frames, b)
        self.fh.flush()
        width = 4 * self.channels
        data = os.pread(self.fh.fileno(), (b - a) * width, a * width)
        return np.frombuffer(data, dtype=np.float32).reshape(-1, self.channels)

    def close(self) -> None:
        self.fh.close()


def envelope_reader(read: Callable[[int, int], np.ndarray], n: int, floor: float) -> EnvelopeAt:
    """peak_envelope(x, floor) for frames [a, b), from read(a, b) giving x's frames."""

    def env_at(a: int, b: int) -> np.ndarray:
        lo = max(0, a - TP_PAD)
        xt = np.ascontiguousarray(read(lo, min(n, b + TP_PAD)).T)
        return envelope_range(xt, lo, n, a, b, floor)

    return env_at


def block_peaks(x: np.ndarray) -> np.ndarray:
    """Sample peak (over channels) of each TP_BLOCK frames of x (frames, channels), float32."""
    x = np.ascontiguousarray(x).reshape(len(x), -1)
    k = -(-len(x) // TP_BLOCK)
    a = np.abs(x).reshape(-1)  # frame-major: a block's frames are one contiguous run
    return np.pad(a, (0, (k * TP_BLOCK - len(x)) * x.shape[1])).reshape(k, -1).max(axis=1)


def dilated(peaks: np.ndarray) -> np.ndarray:
    """Each block's peak and its neighbours': a block's 4x-oversampled values stay under TP_BOUND times this
    (the interpolation reaches TP_PAD // 4 frames across a block edge)."""
    out = peaks.copy()
    out[1:] = np.maximum(out[1:], peaks[:-1])
    out[:-1] = np.maximum(out[:-1], peaks[1:])
    return out


def exact_envelope_max(read: Callable[[int, int], np.ndarray], n: int, peaks: np.ndarray) -> np.float32:
    """peak_envelope(x).max() (floor 0: every block with sound oversampled), oversampling only the blocks
    whose bound can pass the largest value found so far; `peaks` are x's block_peaks.

    The block with the largest bound goes first, so the running maximum starts near the true peak and
    more blocks' bounds fall under it; a block is skipped only when none of its values can exceed a value
    already found, so the result is exact.
    """
    top = peaks.max(initial=np.float32(0))
    bound = dilated(peaks) * np.float32(TP_BOUND * MARGIN)
    candidates = np.flatnonzero((peaks > 0) & (bound > top))
    if not len(candidates):
        return np.float32(top)
    lead = int(candidates[np.argmax(bound[candidates])])
    top = max(top, _block_max(read, n, lead * TP_BLOCK))
    for i in candidates.tolist():
        if i != lead and bound[i] > top:
            top = max(top, _block_max(read, n, i * TP_BLOCK))
    return np.float32(top)


def _block_max(read: Callable[[int, int], np.ndarray], n: int, start: int) -> np.float32:
    lo = max(0, start - TP_PAD)
    xt = np.ascontiguousarray(read(lo, min(n, start + TP_BLOCK + TP_PAD)).T)
    return oversampled_block(xt, lo, n, start).max()


def exact_envelope_reader(read: Callable[[int, int], np.ndarray], n: int, peaks: np.ndarray, above: float):
    """peak_envelope(x) (floor 0) for frames [a, b), exact wherever it may exceed `above` (elsewhere the
    sample peak, which is never more): for a limiter whose threshold is `above`, the same decisions."""
    chosen = (peaks > 0) & (dilated(peaks) * TP_BOUND * MARGIN > above)

    def env_at(a: int, b: int) -> np.ndarray:
        lo = max(0, a - TP_PAD)
        xt = np.ascontiguousarray(read(lo, min(n, b + TP_PAD)).T)
        out = np.abs(xt[:, a - lo : b - lo]).max(axis=0)
        oversample_into(out, xt, lo, n, a, b, np.flatnonzero(chosen[a // TP_BLOCK : -(-b // TP_BLOCK)]))
        return out

    return env_at
