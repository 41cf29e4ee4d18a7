"""Any audio file a person has, as the pipeline's 44.1 kHz stereo 24-bit FLAC, in bounded memory.

libsndfile decodes WAV, FLAC, OGG and MP3 in blocks; soxr resamples them as a stream
(its HQ setting), so a long recording never sits whole in memory. Mono is duplicated
to both channels. More than two channels (WAV/FLAC order: front left, front right,
then the rest) fold down: the first two stay left and right and every other channel
joins both at -3 dB, scaled so the fold cannot clip where its inputs did not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from pipeline.audio.measure import StemMeter
from pipeline.errors import ItemError
from pipeline.io.atomic import atomic_path
from pipeline.records import StemMeasure

SAMPLE_RATE = 44100
BLOCK = 65536
CLIP_LEVEL = 0.999


@dataclass(frozen=True)
class SourceInfo:
    format: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def probe(path: Path) -> SourceInfo:
    """The file's format, rate, channels and length; ItemError when libsndfile cannot read it."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise ItemError(f"cannot decode {path.name}: {e}") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise ItemError(f"{path.name} holds no audio")
    return SourceInfo(info.format, int(info.samplerate), int(info.channels), int(info.frames))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def to_stereo(x: np.ndarray) -> np.ndarray:
    """(frames, channels) float32 -> (frames, 2)."""
    n = x.shape[1]
    if n == 2:
        return x
    if n == 1:
        return np.repeat(x, 2, axis=1)
    rest = x[:, 2:].sum(axis=1, keepdims=True) * np.float32(np.sqrt(0.5))
    scale = np.float32(1.0 / (1.0 + np.sqrt(0.5) * (n - 2)))
    return (x[:, :2] + rest) * scale


def stereo_blocks(path: Path, info: SourceInfo, start: int = 0, frames: int | None = None):
    """The file (or `frames` from `start`) as 44.1 kHz stereo float32 blocks."""
    resampler = soxr.ResampleStream(info.sample_rate, SAMPLE_RATE, 2, dtype="float32", quality="HQ")
    same = info.sample_rate == SAMPLE_RATE
    with sf.SoundFile(str(path)) as f:
        if start:
            f.seek(start)
        for block in f.blocks(BLOCK, dtype="float32", always_2d=True, frames=-1 if frames is None else frames):
            y = to_stereo(np.ascontiguousarray(block, dtype=np.float32))
            out = y if same else resampler.resample_chunk(y)
            if len(out):
                yield out
    if not same:
        tail = resampler.resample_chunk(np.zeros((0, 2), dtype=np.float32), last=True)
        if len(tail):
            yield tail


@dataclass(frozen=True)
class Converted:
    frames: int
    gain_db: float
    measured: StemMeasure

    @property
    def duration_s(self) -> float:
        return self.frames / SAMPLE_RATE


def _write(src: Path, info: SourceInfo, dst: Path, gain: float) -> tuple[int, float, StemMeasure | None]:
    """(frames, peak, levels); levels None when the file would clip (then nothing is written)."""
    meter = StemMeter(SAMPLE_RATE, 2)
    written, peak = 0, 0.0
    with atomic_path(dst) as tmp:
        with sf.SoundFile(tmp, "w", samplerate=SAMPLE_RATE, channels=2, format="FLAC", subtype="PCM_24") as out:
            for y in stereo_blocks(src, info):
                if gain != 1.0:
                    y = y * np.float32(gain)
                if not np.all(np.isfinite(y)):
                    raise ItemError(f"{src.name}: decoded NaN or infinite samples")
                peak = max(peak, float(np.abs(y).max(initial=0.0)))
                if peak > CLIP_LEVEL:
                    continue  # measure the whole file's peak; the caller writes again lower
                out.write(y)
                meter.add(y)
                written += len(y)
        if peak > CLIP_LEVEL:
            tmp.unlink()  # not kept: the caller writes it again lower
    return written, peak, (meter.result() if peak <= CLIP_LEVEL else None)


def convert(src: Path, info: SourceInfo, dst: Path) -> Converted:
    """Write `src` to `dst` as 44.1 kHz stereo 24-bit FLAC (atomically). A file whose samples (or its
    resampled overshoots) pass full scale is written again just below it, the gain recorded."""
    frames, peak, measured = _write(src, info, dst, 1.0)
    gain_db = 0.0
    if peak > CLIP_LEVEL:
        gain_db = round(float(-20 * np.log10(peak / CLIP_LEVEL) - 0.1), 3)
        frames, peak, measured = _write(src, info, dst, 10 ** (gain_db / 20))
    if measured is None:
        raise ItemError(f"{src.name}: still peaks at {20 * np.log10(peak):+.2f} dBFS after {gain_db} dB")
    return Converted(frames, gain_db, measured)


def analysis_window(info: SourceInfo, max_s: float) -> tuple[int, int]:
    """(start, frames) of the source the estimators see: all of it, or `max_s` from its middle."""
    want = int(max_s * info.sample_rate)
    if info.frames <= want:
        return 0, info.frames
    return (info.frames - want) // 2, want
