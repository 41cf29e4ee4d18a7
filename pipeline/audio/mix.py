"""Loudness-normalise a song's stems and mix them.

`average` is the reference pipeline's method (the mean of the normalised stems);
`sum` adds them and, as Slakh2100 did, applies one shared gain when the sum would
pass the true-peak ceiling. Either way the mix is then brought to its own
loudness target, with a limiter keeping the ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.audio.loudness import db_to_gain, integrated_lufs, limit_true_peak, peak_envelope, to_db
from pipeline.io.atomic import atomic_open
from pipeline.parallel import ItemError
from pipeline.params import MixParams
from pipeline.records import MixSong, RenderSong, Sound, Stem

SUBTYPE = "PCM_24"


@dataclass(frozen=True)
class MixJob:
    song: RenderSong
    root: Path
    out_dir: Path
    params: MixParams


def write_flac(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    with atomic_open(path, "wb") as fh:
        sf.write(fh, audio, sample_rate, format="FLAC", subtype=SUBTYPE)


def _r(x: float) -> float:
    return round(float(x), 3)


def normalise(
    x: np.ndarray,
    sample_rate: int,
    target_lufs: float,
    ceiling_dbtp: float,
    release_ms: float,
    loudness: float | None = None,
    envelope: np.ndarray | None = None,
) -> tuple[np.ndarray, float, float, bool, float, float]:
    """Bring `x` to `target_lufs` under the true-peak ceiling.

    Returns (audio, loudness before, gain dB, limited, loudness after, true peak dBTP).
    A gain shifts integrated loudness by exactly its dB, so loudness is measured
    again only when the limiter acted; `envelope` (of `x`) spares re-oversampling.
    """
    before = integrated_lufs(x, sample_rate) if loudness is None else loudness
    gain_db = target_lufs - before
    gain = db_to_gain(gain_db)
    y = (x * gain).astype(np.float32)
    if envelope is None:
        envelope = peak_envelope(x, floor=min(db_to_gain(ceiling_dbtp) / gain, float(np.abs(x).max(initial=0.0))))
    y, limited, peak = limit_true_peak(y, sample_rate, ceiling_dbtp, release_ms, envelope * gain)
    after = integrated_lufs(y, sample_rate) if limited else before + gain_db
    return y, before, gain_db, limited, after, peak


def mix_song(job: MixJob) -> MixSong:
    song, p, sr = job.song, job.params, job.song.sample_rate
    song_dir = job.out_dir / song.id
    frames = max(sf.info(str(job.root / t.audio)).frames for t in song.tracks)
    acc = np.zeros((frames, 2), dtype=np.float64)
    stems, silent = [], []
    for t in song.tracks:
        x, file_sr = sf.read(str(job.root / t.audio), dtype="float32", always_2d=True)
        if file_sr != sr:
            raise ItemError(f"{t.id}: stem is {file_sr} Hz, expected {sr} Hz")
        loudness = integrated_lufs(x, sr)
        if loudness < p.silence_lufs:
            silent.append(t.id)
            continue
        y, before, gain_db, limited, after, peak = normalise(
            x, sr, p.stem_lufs, p.ceiling_dbtp, p.limiter_release_ms, loudness=loudness
        )
        path = song_dir / Path(t.audio).name
        write_flac(path, y, sr)
        acc[: len(y)] += y
        stems.append(
            Stem(
                id=t.id,
                audio=path.relative_to(job.root).as_posix(),
                loudness_before_lufs=_r(before),
                loudness_after_lufs=_r(after),
                gain_db=_r(gain_db),
                true_peak_dbtp=_r(peak),
                limited=limited,
                **t.model_dump(include=set(Sound.model_fields)),
            )
        )
    if not stems:
        raise ItemError(f"all {len(song.tracks)} stems are silent (below {p.silence_lufs} LUFS)")
    acc32 = acc.astype(np.float32)
    env = peak_envelope(acc32)  # exact everywhere: the staging gain and the final gain both need it
    # average: the mean of the stems; sum: one shared gain only if the sum would pass the ceiling.
    staged = min(0.0, p.ceiling_dbtp - to_db(env.max()))
    shared_db = -20 * np.log10(len(stems)) if p.mode == "average" else staged
    shared = db_to_gain(shared_db)
    mix, _, mix_gain_db, mix_limited, mix_lufs, mix_peak = normalise(
        acc32 * shared, sr, p.mix_lufs, p.ceiling_dbtp, p.limiter_release_ms, envelope=env * shared
    )
    mix_path = song_dir / "mix.flac"
    write_flac(mix_path, mix, sr)
    return MixSong(
        id=song.id,
        artist=song.artist,
        title=song.title,
        sample_rate=sr,
        duration_s=round(frames / sr, 6),
        mode=p.mode,
        mix=mix_path.relative_to(job.root).as_posix(),
        stems=stems,
        silent_stems=silent,
        shared_gain_db=_r(shared_db),
        mix_gain_db=_r(mix_gain_db),
        mix_lufs=_r(mix_lufs),
        mix_true_peak_dbtp=_r(mix_peak),
        mix_limited=mix_limited,
    )
