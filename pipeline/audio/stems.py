"""A normalised stem's samples, from the file its record names.

Mix writes a new file only for a stem its limiter changed. Any other stem is its
render file times one gain, so its record names the render file and that gain
(`Stem.source_gain`) instead of a copy, which costs an encode and the stem's
disk space again. `stem_samples` gives what the copy held, bit for bit: the
gain in float32, then the 24-bit rounding a FLAC file would have applied.
"""

from __future__ import annotations

import numpy as np

from pipeline.records import Stem

PCM24 = float(1 << 23)  # libsndfile scales float to 24-bit and back by 2^23, rounding to nearest even


def as_pcm24(x: np.ndarray) -> np.ndarray:
    """float samples as a 24-bit PCM file holds them and soundfile reads them back (|x| < 1), float32.

    Scaling by 2^23 and rounding are exact in float32 too (the integers stay under 2^24), so float32
    input is rounded in place in float32, which halves the memory traffic of the float64 route."""
    x = np.asarray(x)
    if x.dtype == np.float32:
        y = x * np.float32(PCM24)
        np.rint(y, out=y)
        y /= np.float32(PCM24)
        return y
    return (np.rint(np.asarray(x, dtype=np.float64) * PCM24) / PCM24).astype(np.float32)


def stem_samples(x: np.ndarray, stem: Stem) -> np.ndarray:
    """The normalised stem's samples, from `x` read (float32) from the file `stem.audio` names."""
    if stem.source_gain is None:
        return x
    return as_pcm24((np.asarray(x, dtype=np.float32) * stem.source_gain).astype(np.float32))
