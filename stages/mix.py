"""Stage `mix`: loudness-normalise every stem and mix each song.

Reads params `run`, `mix` and data/render/manifest.jsonl; writes
data/mix/{manifest,failures}.jsonl, audio/<song_id>/{tNN,mix}.flac and summary.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.audio.mix import MixJob, mix_song
from pipeline.io.manifest import read_manifest
from pipeline.layout import StageDir
from pipeline.parallel import map_items
from pipeline.params import Params
from pipeline.records import Failure, MixSong, RenderSong
from stages._runner import StageResult, run_stage


def mix(params: Params, out: StageDir) -> StageResult:
    songs = list(read_manifest(StageDir("render", out.root).manifest, RenderSong))
    jobs = [(s.id, MixJob(s, out.root, out.out("audio"), params.mix)) for s in songs]
    outcomes = map_items(mix_song, jobs, params.run, desc="mix: songs", unit="song")
    failures = [Failure(id=o.item_id, stage="mix", reason=o.error or "") for o in outcomes if not o.ok]
    done: list[MixSong] = [o.value for o in outcomes if o.value is not None]
    stems = [st for s in done for st in s.stems]
    summary = {
        "songs": len(done),
        "mode": params.mix.mode,
        "stems": len(stems),
        "silent_stems": sum(len(s.silent_stems) for s in done),
        "limited_stems": sum(st.limited for st in stems),
        "stem_lufs_target": params.mix.stem_lufs,
        "stem_lufs_max_error": round(
            max((abs(st.loudness_after_lufs - params.mix.stem_lufs) for st in stems), default=0), 3
        ),
        "mix_lufs_target": params.mix.mix_lufs,
        "mix_lufs_mean": round(sum(s.mix_lufs for s in done) / max(1, len(done)), 3),
        "max_true_peak_dbtp": max((s.mix_true_peak_dbtp for s in done), default=None),
        "ceiling_dbtp": params.mix.ceiling_dbtp,
        "limited_mixes": sum(s.mix_limited for s in done),
        "audio_seconds": round(sum(s.duration_s for s in done), 3),
    }
    highlights = [
        f"{len(done)} mixes ({params.mix.mode}), mean {summary['mix_lufs_mean']} LUFS, "
        f"max true peak {summary['max_true_peak_dbtp']} dBTP; {len(stems)} stems at {params.mix.stem_lufs} LUFS"
    ]
    return StageResult(done, failures, summary, highlights, inputs=len(jobs))


def main(root: Path | None = None) -> int:
    return run_stage("mix", mix, root=root)


if __name__ == "__main__":
    sys.exit(main())
