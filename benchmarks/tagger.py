"""Tagger benchmark: writes benchmarks/results/tagger.json (a measurement, not a test).

What the genre and mood drafts of `stages.recordings --draft-labels` (musicnn's MSD model in
.venv-tagger, pipeline/recordings/tagger.py) propose for produced music no one here made, at the
params' thresholds: per collection, how many files get a genre or mood draft, which words, the
top scores, and, where a file carries its own genre tag (a Vorbis GENRE comment), that tag beside
the draft. Also the tagger's seconds per audio-minute heard.

Usage: PATH=.venv/bin:$PATH python -m benchmarks.tagger NAME=DIR [NAME=DIR ...]
(measured with Debian's wesnoth-1.16-music, nexuiz-music and warzone2100-music, extracted with
`apt-get download` and `dpkg -x`, not installed; nexuiz's music.pk3 unzipped)
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter
from pathlib import Path

import soundfile as sf
import yaml

from benchmarks.results_io import write_result
from pipeline.params import TaggerParams
from pipeline.recordings.tagger import TagDraft, run_tagger

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "tagger.json"
AUDIO = (".ogg", ".opus", ".flac", ".wav", ".mp3")


def _own_genre(path: Path) -> str | None:
    try:
        with sf.SoundFile(str(path)) as f:
            return f.copy_metadata().get("genre")
    except (RuntimeError, sf.LibsndfileError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("collections", nargs="+", help="NAME=DIR")
    args = ap.parse_args()
    params = TaggerParams.model_validate(yaml.safe_load((REPO / "params.yaml").read_text())["recordings"]["tagger"])
    result: dict = {
        "machine": {"cores": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "tagger": params.model_dump(),
        "collections": {},
    }
    for spec in args.collections:
        name, folder = spec.split("=", 1)
        files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO)
        heard_s = sum(min(sf.info(str(f)).duration, params.max_s) for f in files)
        start = time.perf_counter()
        drafts = run_tagger(files, params, REPO)
        seconds = time.perf_counter() - start
        genres, moods, own = Counter(), Counter(), Counter()
        per_file = {}
        for f in files:
            d = drafts[f]
            tag = _own_genre(f)
            if not isinstance(d, TagDraft):  # the reason it has none
                per_file[f.name] = None
                continue
            genres.update(d.genre or ["(none)"])
            moods.update(d.mood or ["(none)"])
            if tag:
                own[f"{tag} -> {', '.join(d.genre) or '(none)'}"] += 1
            per_file[f.name] = {"genre": d.genre, "mood": d.mood, "scores": d.scores, "own_genre_tag": tag}
        result["collections"][name] = {
            "files": len(files),
            "untagged": sum(v is None for v in per_file.values()),
            "with_genre_draft": sum(bool(v and v["genre"]) for v in per_file.values()),
            "with_mood_draft": sum(bool(v and v["mood"]) for v in per_file.values()),
            "genre_drafts": dict(genres.most_common()),
            "mood_drafts": dict(moods.most_common()),
            "own_genre_tag_vs_draft": dict(own.most_common()),
            "tagger_s": round(seconds, 1),
            "tagger_s_per_audio_minute_heard": round(seconds / (heard_s / 60), 3) if heard_s else None,
            "per_file": per_file,
        }
        print(name, {k: v for k, v in result["collections"][name].items() if k != "per_file"})
    write_result(OUT, result)


if __name__ == "__main__":
    main()
