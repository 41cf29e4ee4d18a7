"""Sound benchmark: writes benchmarks/results/sound.json (a measurement, not a test).

How far our renders are from produced, mixed music, for each candidate default SoundFont: the
same MIDI rendered and mixed by the `render` and `mix` stages with `render.soundfont` set to
each candidate, then embedded with a learned music model (musicnn, MSD-trained; its weights ship
inside its wheel) next to a reference set of produced music no one here made, and compared by the
Fréchet distance (benchmarks/sound_fad.py, which runs in .venv-tagger, the TensorFlow environment).

Figures per candidate and corpus: FD of the mixes to the reference, FD of the solo stems to the
reference (stems are single parts, so only the ranking between candidates means anything), render
and mix seconds, and the reference split in two halves (the floor a perfect render would reach).

Reference used for the committed figures (Debian packages, extracted with `apt-get download` and
`dpkg -x`, not installed): warzone2100-music (GPL-2+/CC0 soundtrack albums, Opus) and
nexuiz-music (GPL, Ogg). MIDI: Debian's openttd-openmsx and planetblupi-music-midi (third-party
GM songs) and the embedded sample.

Usage:
  make tagger-env   # .venv-tagger: TensorFlow and musicnn (pipeline/analysis/musicnn.py)
  PATH=.venv/bin:$PATH python -m benchmarks.sound --reference DIR [DIR ...] --midi DIR [DIR ...] \\
      --soundfont timgm6mb= --soundfont fluidr3=/usr/share/sounds/sf2/FluidR3_GM.sf2 [--sample-songs 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from benchmarks.results_io import stage_seconds, write_result
from pipeline.io.manifest import read_manifest
from pipeline.records import MixSong

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "sound.json"
AUDIO = (".ogg", ".opus", ".flac", ".wav", ".mp3")


def _midi_folder(root: Path, dirs: list[str], limit: int | None) -> Path:
    """The MIDI files as <Folder>/<Title>.mid under one folder (the `dir` source's layout)."""
    folder = root / "midi"
    if folder.is_dir():
        return folder
    files = [p for d in dirs for p in sorted(Path(d).rglob("*")) if p.suffix.lower() in (".mid", ".midi")]
    for p in files[:limit]:
        dest = folder / p.parent.name / p.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, dest)
    if not files:
        raise SystemExit(f"no MIDI files under {dirs}")
    return folder


def _render(root: Path, corpus: str, midi: Path | None, songs: int, soundfont: str | None, workers: int) -> dict:
    """ingest -> split -> render -> mix in a scratch project (kept when done, with --keep); the mix and stem
    files and the seconds."""
    done = root / "seconds.json"
    if done.is_file():
        return json.loads(done.read_text())
    root.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["run"]["workers"] = workers
    if corpus == "sample":
        params["ingest"]["sample"]["songs"] = songs
    else:
        params["ingest"]["source"], params["ingest"]["path"] = "dir", str(midi)
    params["render"]["soundfont"] = soundfont
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    seconds = {name: round(stage_seconds(name, root), 1) for name in ("ingest", "split", "render", "mix")}
    mixes = list(read_manifest(root / "data/mix/manifest.jsonl", MixSong))
    summary = json.loads((root / "data/render/summary.json").read_text())
    result = {
        "mixes": [str(root / m.mix) for m in mixes],
        "stems": sorted(str(p) for p in (root / "data/render/audio").rglob("*.flac")),
        "seconds": seconds,
        "audio_seconds": summary["audio_seconds"],
        "tracks": summary["tracks_rendered"],
        "track_failures": summary["track_failures"],
        "preset_fallbacks": summary.get("preset_fallbacks", 0),
    }
    done.write_text(json.dumps(result))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", nargs="+", required=True, help="folders of produced music (any depth)")
    ap.add_argument("--midi", nargs="+", required=True, help="folders of third-party MIDI files")
    ap.add_argument("--midi-limit", type=int, default=None, help="at most this many MIDI files")
    ap.add_argument("--sample-songs", type=int, default=8, help="embedded sample songs (0: none)")
    ap.add_argument("--soundfont", action="append", required=True, help="NAME=PATH (empty PATH: TimGM6mb)")
    ap.add_argument("--fad-python", default=str(REPO / ".venv-tagger/bin/python"))
    ap.add_argument("--max-s", type=float, default=120.0, help="seconds embedded per mix (its middle)")
    ap.add_argument("--max-s-stems", type=float, default=30.0, help="seconds embedded per stem (its middle)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bootstrap", type=int, default=50, help="FD again over files drawn with replacement")
    ap.add_argument("--keep", help="render into this folder and keep it; a second run reuses finished renders")
    args = ap.parse_args()

    candidates = dict(s.split("=", 1) for s in args.soundfont)
    reference = sorted(str(p) for d in args.reference for p in Path(d).rglob("*") if p.suffix.lower() in AUDIO)
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sound-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        midi = _midi_folder(tmp, args.midi, args.midi_limit)
        corpora = ["real"] + (["sample"] if args.sample_songs else [])
        renders: dict[str, dict[str, Any]] = {}
        for name, path in candidates.items():
            for corpus in corpora:
                renders[f"{name}/{corpus}"] = _render(tmp / name / corpus, corpus, midi, args.sample_songs,
                                                      path or None, args.workers)  # fmt: skip
        half = len(reference) // 2
        sets = {"reference": reference, "reference_a": reference[::2], "reference_b": reference[1::2]}
        pairs = [["reference_a", "reference_b"]]
        for key, r in renders.items():
            sets[f"{key}/mix"], sets[f"{key}/stems"] = r["mixes"], r["stems"]
            pairs += [[f"{key}/mix", "reference"], [f"{key}/stems", "reference"]]
        job = json.dumps(
            {
                "sets": sets,
                "pairs": pairs,
                "max_s": args.max_s,
                "max_s_stems": args.max_s_stems,
                "bootstrap": args.bootstrap,
            }
        )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run([args.fad_python, "-m", "benchmarks.sound_fad"], input=job, text=True, cwd=REPO,
                              env=env, check=True, capture_output=True)  # fmt: skip
        fad = json.loads(done.stdout)
        d = fad["distances"]
        result: dict[str, Any] = {
            "machine": {"cores": os.cpu_count(), "processor": platform.processor() or platform.machine()},
            "embedding": "musicnn 0.1.0 MSD_musicnn, 200-d penultimate layer per 3 s patch, files at -14 LUFS; "
            f"the middle {args.max_s:g} s of each mix and reference file, {args.max_s_stems:g} s of each stem",
            "reference": {
                "files": len(reference),
                "patches": fad["patches"]["reference"],
                "dirs": args.reference,
                "halves_fd": d["reference_a|reference_b"],
                "halves": half,
            },
            "candidates": {},
        }
        for key, r in renders.items():
            name, corpus = key.split("/")
            entry = result["candidates"].setdefault(name, {"soundfont": candidates[name] or "TimGM6mb.sf2"})
            entry[corpus] = {
                "fd_mix": d[f"{key}/mix|reference"],
                "fd_stems": d[f"{key}/stems|reference"],
                "fd_mix_bootstrap_5_50_95": fad["bootstrap"].get(f"{key}/mix|reference"),
                "fd_stems_bootstrap_5_50_95": fad["bootstrap"].get(f"{key}/stems|reference"),
                "mixes": len(r["mixes"]),
                "stems": len(r["stems"]),
                "patches_mix": fad["patches"][f"{key}/mix"],
                "patches_stems": fad["patches"][f"{key}/stems"],
                "render_s": r["seconds"]["render"],
                "mix_s": r["seconds"]["mix"],
                "stem_audio_s": r["audio_seconds"],
                "track_failures": r["track_failures"],
                "preset_fallbacks": r["preset_fallbacks"],
            }
        write_result(OUT, result)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
