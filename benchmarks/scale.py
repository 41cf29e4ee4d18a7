"""Scale benchmark: writes benchmarks/results/scale.json (a measurement, not a test).

Generates a Lakh-like corpus (3-5 min songs, 6-14 tracks, tempo changes, 10 % of
files a second version `<Title>.1.mid` of another song, as Lakh's clean_midi holds
them), runs the pipeline's stages on it at several corpus sizes in scratch
projects (the repository's params, only the source changed), and records per stage:
seconds per song, peak RSS of the stage's processes (driver or a worker, local or on
Ray, whichever is larger), disk per audio-hour, the growth exponent of time against corpus size;
then 1 vs 2 workers and the local vs the Ray executor on the same work, and a
projection for Lakh clean_midi from the measured costs per audio-hour.

Usage: PATH=.venv/bin:$PATH python -m benchmarks.scale [--sizes 24 96 384] [--workers 2]
       [--stages ingest ... augment] [--compare-size N] [--keep DIR] [--out FILE]
Stages run with the `stages` package on PYTHONPATH, or else the installed (editable) one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mido
import yaml

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "scale.json"
STAGES = ("ingest", "split", "render", "mix", "tag", "metadata", "clip", "prompts", "augment")
COMPARED = ("render", "mix", "tag")  # the per-audio stages, rerun for the worker and engine comparisons
# Audio no later stage reads, removed (after its disk is measured) once this stage is done, so a
# size's peak disk is its clips and variants, not every intermediate at once (augment re-renders
# from the clip MIDI and reads only clip's outputs).
PRUNE_AFTER = {"clip": ("render/audio", "mix/audio")}
WHAT = "pipeline cost on a generated Lakh-like corpus (3-5 min songs, 6-14 tracks, 10 % versions)"
LAKH = {"files": 17_000, "hours": 1_000.0}  # clean_midi, as the issue states it
TPB = 480
# GM programs per family, for melodic parts drawn at random (bass and drums are separate).
FAMILIES = {
    "piano": range(0, 8),
    "organ": range(16, 24),
    "guitar": range(24, 32),
    "strings": range(40, 52),
    "brass": range(56, 64),
    "reed": range(64, 72),
    "pipe": range(72, 80),
    "lead": range(80, 88),
    "pad": range(88, 96),
}
MAJOR, MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)


def _conductor(rng: random.Random, beats: int) -> tuple[mido.MidiTrack, float]:
    """Tempo map with 0-2 changes and a 4/4 (sometimes 3/4) meter; returns it and the song's seconds."""
    track = mido.MidiTrack()
    meter = 4 if rng.random() < 0.85 else 3
    track.append(mido.MetaMessage("time_signature", numerator=meter, denominator=4, time=0))
    bpm = rng.uniform(80, 160)
    changes = sorted(rng.sample(range(16, beats - 16, meter), rng.randint(0, 2)))
    last, seconds = 0, 0.0
    for beat in [0, *changes]:
        if beat:
            seconds += (beat - last) * 60 / bpm
            bpm = min(200.0, max(60.0, bpm * rng.uniform(0.8, 1.25)))
        track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=(beat - last) * TPB))
        last = beat
    seconds += (beats - last) * 60 / bpm
    return track, seconds


def _notes(rng: random.Random, role: str, beats: int, tonic: int, scale: tuple[int, ...]) -> list[tuple]:
    """(start_beat, length_beats, pitch, velocity) of one part: drums, bass, chords or a line."""
    out = []
    if role == "drums":
        for b in range(beats):
            out.append((b, 0.25, 36 if b % 2 == 0 else 38, 100))
            out += [(b + h, 0.25, 42, 70) for h in (0.0, 0.5)]
        return out
    octave = {"bass": 36, "chords": 60, "line": 72}[role]
    for bar in range(0, beats, 4):
        degree = rng.choice((0, 3, 4, 5))
        root = octave + tonic + scale[degree]
        if role == "bass":
            out += [(bar + b, 0.9, root, 90) for b in range(4)]
        elif role == "chords":
            out += [(bar, 3.9, root + scale[(degree + k) % 7] - scale[degree], 75) for k in (0, 2, 4)]
        else:
            for b in range(8):
                if rng.random() < 0.7:
                    out.append((bar + b / 2, 0.45, octave + tonic + rng.choice(scale) + 12 * rng.randint(0, 1), 85))
    return out


def _part(channel: int, program: int, notes: list[tuple], name: str) -> mido.MidiTrack:
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    track.append(mido.Message("program_change", channel=channel, program=program, time=0))
    events = []
    for start, length, pitch, vel in notes:
        events.append((round(start * TPB), 1, pitch, vel))
        events.append((round((start + length) * TPB), 0, pitch, 0))
    now = 0
    for tick, on, pitch, vel in sorted(events):
        kind = "note_on" if on else "note_off"
        track.append(mido.Message(kind, channel=channel, note=pitch, velocity=vel, time=tick - now))
        now = tick
    return track


def song_file(rng: random.Random) -> tuple[mido.MidiFile, float]:
    """One Lakh-like song: 3-5 minutes, 6-14 tracks (drums, bass, the rest across GM families)."""
    target_s, bpm_guess = rng.uniform(180, 300), 120
    beats = int(target_s * bpm_guess / 60) // 4 * 4
    conductor, seconds = _conductor(rng, beats)
    tonic, scale = rng.randrange(12), MAJOR if rng.random() < 0.6 else MINOR
    n_tracks = rng.randint(6, 14)
    mid = mido.MidiFile(ticks_per_beat=TPB)
    mid.tracks.append(conductor)
    mid.tracks.append(_part(9, 0, _notes(rng, "drums", beats, tonic, scale), "Drums"))
    mid.tracks.append(_part(0, rng.choice(range(32, 40)), _notes(rng, "bass", beats, tonic, scale), "Bass"))
    channels = [c for c in range(1, 16) if c != 9]
    for i in range(n_tracks - 2):
        family = rng.choice(sorted(FAMILIES))
        role = "chords" if family in ("organ", "strings", "pad", "piano") and rng.random() < 0.6 else "line"
        notes = _notes(rng, role, beats, tonic, scale)
        mid.tracks.append(_part(channels[i], rng.choice(FAMILIES[family]), notes, f"{family} {i + 1}"))
    return mid, seconds


def write_corpus(folder: Path, n: int, seed: int) -> dict[str, Any]:
    """`n` files under folder/<Artist>/<Title>.mid; every tenth a second version of another song."""
    rng = random.Random(seed)
    seconds, written = 0.0, []
    for i in range(n):
        if i % 10 == 9 and written:
            src = rng.choice(written)
            mid = mido.MidiFile(src)
            mid.tracks.pop()  # Lakh versions differ; the one with more instruments is kept
            dest = src.with_name(src.stem + ".1.mid")
        else:
            mid, s = song_file(random.Random(rng.getrandbits(32)))
            seconds += s
            dest = folder / f"Artist {i % 97:02d}" / f"Song {i:04d}.mid"
            written.append(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        mid.save(dest)
    return {"files": n, "songs": len(written), "midi_hours": round(seconds / 3600, 3)}


def _project(root: Path, corpus: Path, workers: int, executor: str = "local") -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["ingest"].update({"source": "lakh", "path": str(corpus), "limit": None})
    params["run"]["workers"] = workers
    params["run"]["executor"] = executor
    params["metadata"]["cache_dir"] = str(root / "cache" / "metadata")
    params["prompts"]["cache_dir"] = str(root / "cache" / "prompts")
    params["augment"]["cache_dir"] = str(root / "cache" / "augment")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


_PROBE = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "r = subprocess.run(sys.argv[1:]); u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(r.returncode, time.perf_counter() - t, u.ru_maxrss, u.ru_utime + u.ru_stime)"
)


def run_stage(root: Path, stage: str) -> dict[str, Any]:
    """One stage in its own process tree: wall seconds, CPU seconds, and the largest process's peak RSS:
    the driver or a local worker (from rusage), or a Ray worker (which is not a child: map_items'
    PIPELINE_WORKER_RSS report)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIPY_", "LASTFM_"))}
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rss.jsonl"
        env["PIPELINE_WORKER_RSS"] = str(report)
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE, sys.executable, "-m", f"stages.{stage}"],
            cwd=root, env=env, capture_output=True, text=True,
        )  # fmt: skip
        lines = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    code, seconds, rss_kb, cpu = probe.stdout.split()[-4:]
    if int(code) != 0:
        raise SystemExit(f"{stage} failed in {root} (exit {code}):\n{probe.stderr[-3000:]}")
    workers = [w["max_worker_rss_mb"] for w in lines if w.get("max_worker_rss_mb") is not None]
    # CPU seconds (the stage's processes, user + system) hold when other work shares the machine;
    # Ray's workers are not children, so on Ray they are missing from it (wall seconds still count).
    return {
        "seconds": round(float(seconds), 2),
        "cpu_seconds": round(float(cpu), 2),
        "peak_rss_mb": round(max([int(rss_kb) / 1024, *workers]), 1),
        "worker_peak_rss_mb": max(workers, default=None),
    }


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _audio_hours(root: Path) -> float:
    summary = root / "data" / "mix" / "summary.json"
    return json.loads(summary.read_text())["audio_seconds"] / 3600 if summary.exists() else 0.0


def _exponent(ns: list[int], ts: list[float]) -> float | None:
    """Least-squares slope of log(time) on log(N)."""
    pts = [(math.log(n), math.log(t)) for n, t in zip(ns, ts, strict=True) if t > 0]
    if len(pts) < 2:
        return None
    mx, my = sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    return round(sum((x - mx) * (y - my) for x, y in pts) / den, 3) if den else None


def _growth(sizes: list[dict[str, Any]], figure: str) -> dict[str, float | None]:
    """Each stage's growth exponent over the sizes that measured it (by songs)."""
    stages = dict.fromkeys(st for s in sizes for st in s["stages"])
    out = {}
    for st in stages:
        have = [s for s in sizes if s["stages"].get(st, {}).get(figure) is not None]
        out[st] = _exponent([s["songs"] for s in have], [s["stages"][st][figure] for s in have])
    return out


def measure_size(base: Path, n: int, workers: int, stages: list[str], seed: int, prune: bool) -> dict[str, Any]:
    """One corpus size, stage by stage. With `prune`, intermediate audio goes once no later stage
    reads it and the whole scratch project once measured (a size's outputs reach 15 GB per
    audio-hour: several sizes at once fill a disk)."""
    root = base / f"n{n}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    corpus = write_corpus(root / "corpus", n, seed)
    _project(root, root / "corpus", workers)
    per_stage: dict[str, dict[str, Any]] = {}
    disk: dict[str, int] = {}
    for stage in stages:
        per_stage[stage] = run_stage(root, stage)
        disk[stage] = _du(root / "data" / stage)
        print(f"N={n} {stage}: {per_stage[stage]} disk {disk[stage] / 2**30:.2f} GB", file=sys.stderr)
        for rel in PRUNE_AFTER.get(stage, ()) if prune else ():
            shutil.rmtree(root / "data" / rel, ignore_errors=True)
    hours = _audio_hours(root)
    songs = json.loads((root / "data" / "ingest" / "summary.json").read_text())["songs"]
    for stage, fig in per_stage.items():
        fig["seconds_per_song"] = round(fig["seconds"] / max(1, songs), 3)
        fig["seconds_per_audio_hour"] = round(fig["seconds"] / hours, 1) if hours else None
        fig["cpu_seconds_per_audio_hour"] = round(fig["cpu_seconds"] / hours, 1) if hours else None
        fig["disk_mb"] = round(disk[stage] / 2**20, 1)
        fig["disk_gb_per_audio_hour"] = round(disk[stage] / 2**30 / hours, 3) if hours else None
    if prune:
        shutil.rmtree(root, ignore_errors=True)
    return {"n_files": n, "corpus": corpus, "songs": songs, "audio_hours": round(hours, 3), "stages": per_stage}


RUNS = {"local_1": (1, "local"), "local_2": (2, "local"), "ray_2": (2, "ray")}


def compare(base: Path, n: int, seed: int, stages: list[str], runs: tuple[str, ...] = tuple(RUNS)) -> dict[str, Any]:
    """The per-audio stages on one corpus: 1 worker, 2 workers (local), 2 workers on Ray (or the
    `runs` named). Ray's own start and stop (a local instance per stage run) count in its seconds."""
    root = base / f"compare{n}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    write_corpus(root / "corpus", n, seed)
    _project(root, root / "corpus", 2)
    for stage in stages[: stages.index(COMPARED[0])]:
        run_stage(root, stage)
    measured: dict[str, dict[str, Any]] = {}
    for label in runs:
        workers, executor = RUNS[label]
        _project(root, root / "corpus", workers, executor)
        measured[label] = {s: run_stage(root, s) for s in COMPARED if s in stages}
        print(f"compare {label}: {measured[label]}", file=sys.stderr)
    out: dict[str, Any] = {"n_files": n, "runs": measured}
    two = measured["local_2"]
    if "local_1" in measured:
        out["speedup_2_vs_1"] = {s: round(measured["local_1"][s]["seconds"] / two[s]["seconds"], 3) for s in two}
    if "ray_2" in measured:
        ray = measured["ray_2"]
        out["ray_vs_local_2"] = {s: round(ray[s]["seconds"] / two[s]["seconds"], 3) for s in ray}
        out["ray_extra_seconds"] = {s: round(ray[s]["seconds"] - two[s]["seconds"], 1) for s in ray}
    shutil.rmtree(root, ignore_errors=True)
    return out


def project(
    sizes: list[dict[str, Any]],
    comparison: dict[str, Any] | None,
    workers: int,
    ray_check: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Lakh clean_midi's cost from the largest run's cost per audio-hour (measured at
    `workers` workers on this machine), scaled to 16 cores and to 4 x 16 on Ray with
    the measured 1 -> 2 worker efficiency held constant (optimistic past 2 cores). Ray's
    factor comes from the larger of the two local-vs-Ray runs (its fixed start-up weighs less)."""
    largest = sizes[-1]
    # Each stage's figure from the largest size that has it (a size cut short, or measured for
    # some stages only, keeps the others').
    wall: dict[str, float] = {}
    for size in sizes:
        wall.update({s: f["seconds_per_audio_hour"] for s, f in size["stages"].items()
                     if f.get("seconds_per_audio_hour")})  # fmt: skip
    core_s = {s: c * workers for s, c in wall.items()}
    eff = 1.0
    if comparison and comparison.get("speedup_2_vs_1"):
        eff = min(1.0, sum(comparison["speedup_2_vs_1"].values()) / len(comparison["speedup_2_vs_1"]) / 2)
    ray_factor = 1.0
    ray_runs = [c for c in (comparison, ray_check) if c and c.get("ray_vs_local_2")]
    if ray_runs:
        ratios = max(ray_runs, key=lambda c: c["n_files"])["ray_vs_local_2"]
        ray_factor = sum(ratios.values()) / len(ratios)
    hours = LAKH["hours"]
    one_machine = {s: round(c * hours / (16 * eff) / 3600, 2) for s, c in core_s.items()}
    cluster = {s: round(c * hours / (64 * eff) * ray_factor / 3600, 2) for s, c in core_s.items()}
    # From CPU seconds (user + system of the stage's processes): what the work costs, whatever else
    # shared the machine's cores while it ran (wall seconds count that too). Not divided by the
    # measured efficiency: CPU seconds already hold the extra work of more workers, and the idle
    # part of the small runs' efficiency (the last songs' tail, worker start-up) is one song's
    # time among 17,000 / 16 per worker at Lakh scale.
    per_hour: dict[str, float | None] = {}
    for size in sizes:
        per_hour.update({s: f["cpu_seconds_per_audio_hour"] for s, f in size["stages"].items()
                         if f.get("cpu_seconds_per_audio_hour")})  # fmt: skip
    cpu_s = {s: c for s, c in per_hour.items() if c}
    from_cpu = {s: round(c * hours / 16 / 3600, 2) for s, c in cpu_s.items()}
    return {
        "basis": f"each stage from the largest N that measured it (N <= {largest['n_files']}) at {workers} workers; "
        f"{hours:g} audio-hours; parallel efficiency {eff:.2f}",
        "lakh_16_cores_hours": {"by_stage": one_machine, "total": round(sum(one_machine.values()), 1)},
        "lakh_16_cores_hours_from_cpu": {"by_stage": from_cpu, "total": round(sum(from_cpu.values()), 1)},
        "lakh_ray_4x16_hours": {"by_stage": cluster, "total": round(sum(cluster.values()), 1)},
        "dominant_stage": max(one_machine, key=one_machine.get) if one_machine else None,
        "dominant_stage_from_cpu": max(from_cpu, key=from_cpu.get) if from_cpu else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[24, 96, 384],
        help="corpus sizes; none (with --compare-size) reruns only the comparison, keeping the sizes already in --out",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    ap.add_argument("--compare-size", type=int, default=None, help="corpus for 1 vs 2 workers and local vs Ray")
    ap.add_argument(
        "--ray-size",
        type=int,
        default=None,
        help="a second corpus for local vs Ray only (2 workers each): Ray's fixed start and stop weigh less",
    )
    ap.add_argument(
        "--merge",
        action="store_true",
        help="add the sizes measured to those in --out (a size measured again is replaced) and keep its comparisons",
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", type=Path, help="scratch folder to keep (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=OUT, help=f"result file (default {OUT.relative_to(REPO)})")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="m2f-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if not args.sizes and not args.compare_size and not args.ray_size:
        ap.error("nothing to measure: give --sizes, --compare-size, --ray-size or several")
    earlier = json.loads(args.out.read_text()) if (args.merge or not args.sizes) and args.out.exists() else {}
    if not args.sizes and not earlier.get("sizes"):
        ap.error(f"--sizes is empty and {args.out} holds no sizes to keep")
    prune = args.keep is None
    sizes = [measure_size(base, n, args.workers, args.stages, args.seed, prune) for n in sorted(args.sizes)]
    comparison = compare(base, args.compare_size, args.seed, args.stages) if args.compare_size else None
    ray_check = compare(base, args.ray_size, args.seed, args.stages, ("local_2", "ray_2")) if args.ray_size else None
    if earlier:
        by_n = {s["n_files"]: s for s in [*earlier["sizes"], *sizes]}  # measured now wins
        sizes = [by_n[n] for n in sorted(by_n)]
        rerun = f"rerun alone ({time.strftime('%Y-%m-%d')}); sizes kept from the file"
        comparison = {**comparison, "what": rerun} if comparison else earlier.get("comparison")
        ray_check = {**ray_check, "what": rerun} if ray_check else earlier.get("ray_check")
    growth = _growth(sizes, "seconds")
    result = {
        **earlier,
        "what": earlier.get("what", WHAT),
        "sizes": sizes,
        "growth_exponent": growth,
        "growth_exponent_cpu": _growth(sizes, "cpu_seconds"),
        "audio_hours_exponent": _exponent([s["songs"] for s in sizes], [s["audio_hours"] for s in sizes]),
        "comparison": comparison,
        "ray_check": ray_check,
        "projection": project(sizes, comparison, args.workers, ray_check),
        "total_s": round(time.perf_counter() - started, 1),
        "cores": os.cpu_count(),
        "machine": platform.platform(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
