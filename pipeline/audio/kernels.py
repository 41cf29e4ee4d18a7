"""Compiled inner loops (numba) for the hot paths of loudness and true peak, bit-identical to the numpy
and scipy code they stand in for.

Each kernel does the same float operations in the same order as the library call it replaces (no
fused multiply-add, no reassociation: numba's default, fastmath off), so results are equal bit for
bit, which the tests check against the library on real audio. Each is compiled on first use and
cached on disk; without numba each getter returns None and the caller takes the library path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

TILE = 512  # outputs per phase summed at a time (the accumulator stays in L1 and the loop vectorises)


Jit = Callable[[Callable[..., None]], Callable[..., None]]


def _kernel(build: Callable[[Jit], Callable[..., None]]) -> Callable[[], Callable[..., None] | None]:
    """A kernel's getter: build(jit) compiled on first call (numba's njit, cached on disk, no fast-math),
    or None without numba."""

    @functools.cache
    def getter() -> Callable[..., None] | None:
        try:
            import numba
        except ImportError:
            return None
        return build(numba.njit(cache=True, nogil=True, fastmath=False))

    getter.__doc__ = build.__doc__
    return getter


@_kernel
def envelope(jit: Jit) -> Callable[..., None]:
    """envelope(padded, phases, first, limit, env): upfirdn's polyphase sums for outputs first, first + 1,
    ... (one per env entry, each over all phases), reduced at once to env[i] = the largest |sum| over
    channels and phases, without writing the 4x signal. For each tile of outputs the taps are added
    one after another, products and sums rounded to float32 each (upfirdn's order); the loop over the
    tile's independent outputs vectorises. Outputs numbered m * phases + p at or past `limit` are the
    ones upfirdn does not produce; they count as zeros."""

    @jit
    def kernel(padded, phases, first, limit, env):  # pragma: no cover (compiled)
        channels = padded.shape[0]
        n_phase, taps = phases.shape
        count = env.shape[0]
        acc = np.empty(TILE, dtype=np.float32)
        for i in range(count):
            env[i] = np.float32(0.0)
        for c in range(channels):
            for p in range(n_phase):
                for t0 in range(0, count, TILE):
                    m = min(count, t0 + TILE) - t0
                    for i in range(m):
                        acc[i] = np.float32(0.0)
                    for k in range(taps):
                        h = phases[p, k]
                        row = padded[c, first + t0 + k : first + t0 + k + m]
                        for i in range(m):
                            acc[i] = acc[i] + row[i] * h
                    # Outputs (first + t0 + i) * n_phase + p under limit: i < valid (no branch in the loop).
                    valid = min(m, max(0, (limit - p + n_phase - 1) // n_phase - first - t0))
                    for i in range(valid):
                        env[t0 + i] = max(env[t0 + i], abs(acc[i]))

    return kernel


@_kernel
def biquads(jit: Jit) -> Callable[..., None]:
    """biquads(x, coefs, state, out): two biquad stages in series on each channel of x (frames, channels),
    into out (channels, frames) float64, as `gain * lfilter(b, a, x)` applied twice with lfilter's state
    carried in `state` (channels, 2 stages, 2). coefs rows: b0, b1, b2, a1, a2, gain (a normalised,
    a0 = 1). scipy's direct form II transposed: y = z0 + b0 x; z0 = z1 + x b1 - y a1; z1 = x b2 - y a2.
    Two channels run in one loop: their recursions are independent, so the CPU overlaps them."""

    @jit
    def kernel(x, coefs, state, out):  # pragma: no cover (compiled)
        n, channels = x.shape
        b10, b11, b12, a11, a12, g1 = coefs[0, 0], coefs[0, 1], coefs[0, 2], coefs[0, 3], coefs[0, 4], coefs[0, 5]
        b20, b21, b22, a21, a22, g2 = coefs[1, 0], coefs[1, 1], coefs[1, 2], coefs[1, 3], coefs[1, 4], coefs[1, 5]
        for c in range(0, channels, 2):
            d = min(c + 1, channels - 1)  # the pair's second channel (the first again when it is alone)
            p10, p11, p20, p21 = state[c, 0, 0], state[c, 0, 1], state[c, 1, 0], state[c, 1, 1]
            q10, q11, q20, q21 = state[d, 0, 0], state[d, 0, 1], state[d, 1, 0], state[d, 1, 1]
            for k in range(n):
                xp, xq = np.float64(x[k, c]), np.float64(x[k, d])
                yp, yq = p10 + b10 * xp, q10 + b10 * xq
                p10, q10 = p11 + xp * b11 - yp * a11, q11 + xq * b11 - yq * a11
                p11, q11 = xp * b12 - yp * a12, xq * b12 - yq * a12
                xp, xq = g1 * yp, g1 * yq
                yp, yq = p20 + b20 * xp, q20 + b20 * xq
                p20, q20 = p21 + xp * b21 - yp * a21, q21 + xq * b21 - yq * a21
                p21, q21 = xp * b22 - yp * a22, xq * b22 - yq * a22
                out[c, k] = g2 * yp
                out[d, k] = g2 * yq
            state[d, 0, 0], state[d, 0, 1], state[d, 1, 0], state[d, 1, 1] = q10, q11, q20, q21
            state[c, 0, 0], state[c, 0, 1], state[c, 1, 0], state[c, 1, 1] = p10, p11, p20, p21

    return kernel


@_kernel
def block_sums(jit: Jit) -> Callable[..., None]:
    """block_sums(y, lower, upper, out): out[c, j] = np.sum(np.square(y[c, lower[j]:upper[j]])), by numpy's
    own pairwise summation of a contiguous run, so each sum equals np.sum's bit for bit: a run of up
    to 128 values is summed by eight accumulators (under 8, by one), a longer one is split at half its
    length rounded down to a multiple of 8 and the two halves' sums are added. Each square (y * y, as
    np.square) is taken as it is read. The recursion runs on an explicit stack, in one function: numba
    cannot cache a function that calls a closure or itself, and compiling costs seconds per process."""

    @jit
    def kernel(y, lower, upper, out):  # pragma: no cover (compiled)
        channels, n_frames = y.shape
        seg_lo = np.empty(64, dtype=np.int64)  # the stack: a segment, how far it is done, its left sum
        seg_n = np.empty(64, dtype=np.int64)
        stage = np.empty(64, dtype=np.int64)
        left = np.empty(64, dtype=np.float64)
        for c in range(channels):
            a = y[c]
            for j in range(lower.shape[0]):
                lo0, hi0 = lower[j], min(upper[j], n_frames)
                if hi0 <= lo0:
                    out[c, j] = 0.0
                    continue
                d = 0
                seg_lo[0], seg_n[0], stage[0] = lo0, hi0 - lo0, 0
                total = 0.0
                while True:
                    lo, n = seg_lo[d], seg_n[d]
                    if n > 128:  # split: the left half first
                        half = n // 2
                        half -= half % 8
                        stage[d] = 1
                        d += 1
                        seg_lo[d], seg_n[d], stage[d] = lo, half, 0
                        continue
                    if n < 8:
                        v = 0.0
                        for i in range(n):
                            v += a[lo + i] * a[lo + i]
                    else:
                        r0, r1 = a[lo] * a[lo], a[lo + 1] * a[lo + 1]
                        r2, r3 = a[lo + 2] * a[lo + 2], a[lo + 3] * a[lo + 3]
                        r4, r5 = a[lo + 4] * a[lo + 4], a[lo + 5] * a[lo + 5]
                        r6, r7 = a[lo + 6] * a[lo + 6], a[lo + 7] * a[lo + 7]
                        i = 8
                        while i < n - (n % 8):
                            r0 += a[lo + i] * a[lo + i]
                            r1 += a[lo + i + 1] * a[lo + i + 1]
                            r2 += a[lo + i + 2] * a[lo + i + 2]
                            r3 += a[lo + i + 3] * a[lo + i + 3]
                            r4 += a[lo + i + 4] * a[lo + i + 4]
                            r5 += a[lo + i + 5] * a[lo + i + 5]
                            r6 += a[lo + i + 6] * a[lo + i + 6]
                            r7 += a[lo + i + 7] * a[lo + i + 7]
                            i += 8
                        v = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
                        while i < n:
                            v += a[lo + i] * a[lo + i]
                            i += 1
                    # Hand v up: a left half waits for its right half; a right half completes its parent.
                    while True:
                        if d == 0:
                            total = v
                            break
                        d -= 1
                        if stage[d] == 1:
                            left[d], stage[d] = v, 2
                            half = seg_n[d] // 2
                            half -= half % 8
                            d += 1
                            seg_lo[d], seg_n[d], stage[d] = seg_lo[d - 1] + half, seg_n[d - 1] - half, 0
                            break
                        v = left[d] + v
                    if d == 0 and stage[0] != 1:
                        break
                out[c, j] = total

    return kernel
