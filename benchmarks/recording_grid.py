"""Recording grid benchmark: writes benchmarks/results/recording_grid.json (a measurement, not a test).

How well the clip stage's beat and bar grid (pipeline/recordings/grid.py) finds bars in audio it did
not make, at the default params:

- `midi`: third-party MIDI files (e.g. Debian's openttd-openmsx and planetblupi) rendered to audio
  with FluidR3_GM. The MIDI is the truth: its downbeats, its tempo, its meter. Files with one tempo
  and one meter only. Each is run twice: unlabelled, and with the BPM and meter a person would write.
  Figures: how often bars are stated, and of the clips cut on bars, how many start within 20 ms of a
  true downbeat (the MIDI's, moved by the notes' median offset from its grid: some files play every
  note ~50 ms after their own beats) or of another beat; the grid's BPM against the MIDI's; the
  estimated meter against the MIDI's. The key is compared with the key of the MIDI's notes
  (pipeline/analysis/key.py), a proxy: nobody here can listen, so there are no hand labels.
- `audio`: produced recordings (e.g. game soundtracks) with no truth: how each would be cut.

Usage:
  PATH=.venv/bin:$PATH python -m benchmarks.recording_grid --midi DIR [DIR ...] --audio DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf
import soxr

from benchmarks.results_io import write_result
from pipeline.analysis.key import KeyLabel, audio_key, midi_key, relation
from pipeline.clips.audit import reason_kind
from pipeline.params import load_params
from pipeline.recordings.clips import grid_params, plan_spans
from pipeline.recordings.grid import GridParams, find_grid

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "recording_grid.json"
SR = 44100
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
TOLERANCE_S = 0.020
MAX_S = 240.0
KEY_STRENGTH = 0.6  # recordings.min_key_strength's default


def _params() -> tuple[GridParams, object, str]:
    p = load_params(REPO / "params.yaml")
    return grid_params(p.recordings), p.clip, p.recordings.key_profile


def _steady(pm: pretty_midi.PrettyMIDI) -> tuple[float, str] | None:
    """(BPM, meter) of a file with one tempo and one meter; None otherwise."""
    _, tempi = pm.get_tempo_changes()
    metas = {(ts.numerator, ts.denominator) for ts in pm.time_signature_changes} or {(4, 4)}
    if len(set(np.round(tempi, 2))) != 1 or len(metas) != 1:
        return None
    num, den = metas.pop()
    return float(tempi[0]), f"{num}/{den}"


def _midi_file(path: Path, grid_p: GridParams, clip_p, profile: str) -> dict | None:
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception:  # noqa: BLE001 - a file pretty_midi cannot read is left out and counted
        return {"file": path.name, "skipped": "unreadable"}
    steady = _steady(pm)
    if steady is None:
        return {"file": path.name, "skipped": "tempo or meter changes"}
    bpm, meter = steady
    end = min(pm.get_end_time(), MAX_S)
    mono = pm.fluidsynth(fs=SR, synthesizer=SOUNDFONT)[: int(end * SR)].astype(np.float32)
    peak = float(np.abs(mono).max())
    if peak <= 0:
        return {"file": path.name, "skipped": "silent"}
    mono /= peak * 2
    # Some files place every note a fixed time after their own grid (planetblupi's: ~50 ms): the bar lines
    # a listener hears are the grid moved by the notes' median offset from it.
    beats_true = pm.get_beats()
    onsets = np.array([n.start for i in pm.instruments for n in i.notes if n.start < end])
    near = np.array([o - beats_true[np.argmin(np.abs(beats_true - o))] for o in onsets])
    offset = float(np.median(near[np.abs(near) < 0.1])) if np.any(np.abs(near) < 0.1) else 0.0
    downbeats = pm.get_downbeats() + offset
    beats_heard = beats_true + offset
    row: dict = {"file": path.name, "bpm": round(bpm, 2), "meter": meter, "seconds": round(end, 1),
                 "note_offset_ms": round(offset * 1000, 1)}  # fmt: skip
    for mode, hand_bpm, hand_meter in (("unlabelled", None, None), ("hand", bpm, meter)):
        g = find_grid(mono, SR, grid_p, hand_bpm, hand_meter)
        cut, spans = plan_spans(g, len(mono), SR, clip_p)
        starts = [s.start / SR for s in spans if s.bars]
        on = [bool(np.min(np.abs(downbeats - t)) <= TOLERANCE_S) for t in starts]
        on_beat = [bool(np.min(np.abs(beats_heard - t)) <= TOLERANCE_S) for t in starts]
        grid_bpm = g.bpm
        row[mode] = {
            "reliable": g.reliable,
            "why": g.why,
            "doubt": g.doubt,
            "cut": cut,
            "meter": g.meter,
            "meter_right": g.meter == meter if g.meter and g.meter_source == "audio" else None,
            "bpm": round(grid_bpm, 2) if grid_bpm else None,
            "bpm_ratio": round(grid_bpm / bpm, 3) if grid_bpm else None,
            "contrast": g.contrast,
            "bar_clips": len(starts),
            "bar_clips_on_downbeat": int(sum(on)),
            "bar_clips_on_another_beat": int(sum(b and not d for b, d in zip(on_beat, on, strict=True))),
        }
    row["second_opinions"] = _second_opinions(mono, bpm)
    notes = midi_key(pm)
    heard = audio_key(mono, SR, profile)
    row["key"] = {"notes": notes.label if notes else None, "audio": heard.label, "strength": heard.strength}
    return row


def _second_opinions(mono: np.ndarray, bpm: float) -> dict:
    """Two other tempo estimators on the same audio (essentia's degara beat tracker, librosa's onset
    autocorrelation): could either tell a grid at the wrong tempo from a right one?"""
    import essentia.standard as es
    import librosa

    degara = float(es.RhythmExtractor2013(method="degara")(mono)[0])
    y = soxr.resample(mono, SR, 22050)
    ac = float(librosa.feature.tempo(onset_envelope=librosa.onset.onset_strength(y=y, sr=22050), sr=22050)[0])
    return {"degara": round(degara, 2), "degara_ratio": round(degara / bpm, 3),
            "librosa": round(ac, 2), "librosa_ratio": round(ac / bpm, 3)}  # fmt: skip


def _agree(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a / b - 1) <= 0.04


def _audio_file(path: Path, grid_p: GridParams, clip_p) -> dict:
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    mono = x.mean(axis=1)
    if sr != SR:
        mono = soxr.resample(mono, sr, SR, quality="HQ").astype(np.float32)
    mono = mono[: int(MAX_S * SR)]
    g = find_grid(mono, SR, grid_p)
    cut, spans = plan_spans(g, len(mono), SR, clip_p)
    return {"file": path.name, "seconds": round(len(mono) / SR, 1), "cut": cut, "reliable": g.reliable,
            "why": g.why, "confidence": g.confidence, "meter": g.meter, "contrast": g.contrast,
            "bpm": round(g.bpm, 2) if g.bpm else None, "clips": len(spans)}  # fmt: skip


def _share(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def _midi_summary(rows: list[dict]) -> dict:
    done = [r for r in rows if "skipped" not in r]
    reasons = sorted({r["skipped"] for r in rows if "skipped" in r})
    out: dict = {"files": len(rows), "used": len(done),
                 "skipped": {k: sum(r.get("skipped") == k for r in rows) for k in reasons}}  # fmt: skip
    for mode in ("unlabelled", "hand"):
        rs = [r[mode] for r in done]
        bar_clips = sum(r["bar_clips"] for r in rs)
        ratios = [r["bpm_ratio"] for r in rs if r["bpm_ratio"]]
        out[mode] = {
            "reliable_grid": sum(r["reliable"] for r in rs),
            "cut": {c: sum(r["cut"] == c for r in rs) for c in ("bars", "beats", "time")},
            "bar_clips": bar_clips,
            "bar_clips_on_downbeat_20ms": sum(r["bar_clips_on_downbeat"] for r in rs),
            "bar_clips_on_another_beat_20ms": sum(r["bar_clips_on_another_beat"] for r in rs),
            "bar_clip_downbeat_share": round(sum(r["bar_clips_on_downbeat"] for r in rs) / bar_clips, 3)
            if bar_clips
            else None,
            "files_with_any_off_downbeat_clip": sum(r["bar_clips"] > r["bar_clips_on_downbeat"] for r in rs),
            "grid_bpm_within_2pct": sum(abs(x - 1) <= 0.02 for x in ratios),
            "grid_bpm_double_or_half": sum(abs(x - 2) <= 0.04 or abs(x - 0.5) <= 0.01 for x in ratios),
            "estimated_meter_right": _share([r["meter_right"] for r in rs if r["meter_right"] is not None]),
        }
    # The reliable unlabelled grids off the true tempo, and whether a second estimator disagrees with them
    # (it would flag the error) or with the right ones (it would withhold a true BPM).
    reliable = [r for r in done if r["unlabelled"]["reliable"] and r["unlabelled"]["bpm"]]
    wrong = [r for r in reliable if abs(r["unlabelled"]["bpm_ratio"] - 1) > 0.02]
    right = [r for r in reliable if abs(r["unlabelled"]["bpm_ratio"] - 1) <= 0.02]
    out["second_opinions"] = {
        name: {
            "wrong_grids": len(wrong),
            "wrong_grids_it_agrees_with": sum(
                _agree(r["second_opinions"][name], r["unlabelled"]["bpm"]) for r in wrong
            ),
            "right_grids": len(right),
            "right_grids_it_disagrees_with": sum(
                not _agree(r["second_opinions"][name], r["unlabelled"]["bpm"]) for r in right
            ),
        }
        for name in ("degara", "librosa")
    }
    keys = [r["key"] for r in done if r["key"]["notes"]]
    out["key_audio_vs_notes_exact"] = _share([k["audio"] == k["notes"] for k in keys])
    sure = [k for k in keys if (k["strength"] or 0) >= KEY_STRENGTH]
    out["key_audio_vs_notes_exact_when_sure"] = _share([k["audio"] == k["notes"] for k in sure])
    pairs = [(KeyLabel.parse(k["audio"]), KeyLabel.parse(k["notes"])) for k in keys]
    out["key_relation"] = dict(Counter(relation(a, b) for a, b in pairs).most_common())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--midi", nargs="*", default=[], help="folders of third-party MIDI (truth)")
    ap.add_argument("--audio", nargs="*", default=[], help="folders of produced recordings (no truth)")
    args = ap.parse_args()
    grid_p, clip_p, profile = _params()
    t0 = time.perf_counter()
    midi_rows = [_midi_file(p, grid_p, clip_p, profile) for d in args.midi for p in sorted(Path(d).glob("*.mid"))]
    t1 = time.perf_counter()
    audio_rows = [_audio_file(p, grid_p, clip_p) for d in args.audio for p in sorted(Path(d).rglob("*"))
                  if p.suffix.lower() in (".ogg", ".opus", ".wav", ".flac", ".mp3")]  # fmt: skip
    t2 = time.perf_counter()
    audio_summary = {
        "files": len(audio_rows),
        "cut": {c: sum(r["cut"] == c for r in audio_rows) for c in ("bars", "beats", "time")},
        "meters": {m: sum(r["meter"] == m for r in audio_rows) for m in sorted({str(r["meter"]) for r in audio_rows})},
        "unreliable_why": dict(sorted(Counter(reason_kind(r["why"]) for r in audio_rows if r["why"]).items())),
    }
    write_result(OUT, {
        "what": "benchmarks.recording_grid: the clip stage's beat/bar grid on rendered third-party MIDI "
                "(truth: the MIDI) and on produced recordings (no truth); first 240 s of each file",
        "params": {"grid": grid_p.__dict__, "window_s": clip_p.window_s, "tolerance_s": TOLERANCE_S},
        "midi": _midi_summary(midi_rows),
        "audio": audio_summary,
        "seconds": {"midi": round(t1 - t0, 1), "audio": round(t2 - t1, 1)},
        "machine": platform.platform(),
        "midi_files": midi_rows,
        "audio_files": audio_rows,
    })  # fmt: skip


if __name__ == "__main__":
    main()
