"""A long multi-track song goes through render, mix, tag and clip with each stage's peak memory bounded.

Each stage runs in its own process and reports its peak RSS (its own and its
workers'). Before streaming, mix held whole stems in float64: a 10-minute,
4-track song took it to 3.1 GB (a 2-hour file died with MemoryError).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.io.manifest import read_manifest
from pipeline.records import MixSong, TagSong
from tests.conftest import REPO, write_params
from tests.long_song import write_long_song

MINUTES = 8
RSS_LIMIT_KB = 1024 * 1024  # 1 GiB

_MEASURED = """
import json, resource, sys
from stages._runner import run_stage
name = sys.argv[1]
rc = run_stage(name, getattr(__import__(f"stages.{name}", fromlist=[name]), name))
# Its own high-water mark (VmHWM): ru_maxrss survives exec, so this process would report at least the size
# of pytest when it forked. Its children fork from this stage process: their ru_maxrss bounds them right.
own = int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
peak = max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"rc": rc, "maxrss_kb": peak}))
"""


def _run_measured(root: Path, stage: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED, stage], cwd=root, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_long_song_goes_through_mix_tag_and_clip_in_bounded_memory(tmp_path):
    write_long_song(tmp_path / "in" / "Long Band" / "Eight Minutes.mid", MINUTES)
    write_params(
        tmp_path,
        {
            "run": {"workers": 1},
            "ingest": {"source": "dir", "path": "in"},
            "split": {"max_duration_s": 7500},
            "metadata": {"spotify": {"enabled": False}, "lastfm": {"enabled": False}},
        },
    )
    peaks = {}
    for stage in ("ingest", "split", "render", "mix", "tag", "metadata", "clip"):
        result = _run_measured(tmp_path, stage)
        assert result["rc"] == 0, stage
        peaks[stage] = result["maxrss_kb"]
    for stage in ("mix", "tag", "clip"):
        assert peaks[stage] < RSS_LIMIT_KB, f"{stage} peaked at {peaks[stage] / 1024:.0f} MiB"

    (song,) = read_manifest(tmp_path / "data" / "mix" / "manifest.jsonl", MixSong)
    assert song.duration_s > MINUTES * 60 - 5 and len(song.stems) == 4
    assert song.mix_true_peak_dbtp <= -1.0 and song.mix_lufs == pytest.approx(-14.0, abs=1.0)
    assert all(abs(s.loudness_after_lufs + 18.0) < 0.5 and s.true_peak_dbtp <= -1.0 for s in song.stems)
    (tags,) = read_manifest(tmp_path / "data" / "tag" / "manifest.jsonl", TagSong)
    assert tags.key.midi == "C major" and tags.tempo.midi_bpm == pytest.approx(120.0)
    assert all(st.timbre.features["active_s"] > 0 for st in tags.stems)
    summary = json.loads((tmp_path / "data" / "clip" / "summary.json").read_text())
    assert summary["clips"] >= MINUTES * 60 // 20  # clips across the whole song (read a window at a time)
