"""The evaluate stage's measurement on audio of known truth: rendered click tracks and chord
loops at known BPM and key score 1.0, and shifted ones score as the definitions say; the
metrics' definitions; the grid; the deeprhythm fallback."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from pipeline.evaluate import grid, measure, metrics, report
from pipeline.params import EvaluateParams, parse_params
from tests.clip_factory import make_clip

SR = 44100
TOLERANCES = [0.02, 0.04]


def clicks(bpm: float, seconds: float = 20.0) -> np.ndarray:
    """A GM drum click track (kick and snare alternating on every beat), rendered by FluidSynth."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    kit = pretty_midi.Instrument(0, is_drum=True)
    beat = 60 / bpm
    for i in range(int(seconds / beat)):
        kit.notes.append(pretty_midi.Note(110, 36 if i % 2 == 0 else 38, i * beat, i * beat + 0.1))
    pm.instruments.append(kit)
    return pm.fluidsynth(fs=SR)[: round(seconds * SR)].astype(np.float32)


_PROGRESSION = {  # I-IV-V-I (minor: i-iv-V-i, the leading tone in V), intervals from the tonic
    "major": [(0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7)],
    "minor": [(0, 3, 7), (5, 8, 12), (7, 11, 14), (0, 3, 7)],
}


def chord_loop(key: str, bpm: float = 100, bars: int = 8) -> np.ndarray:
    """Piano chords and a bass on the roots, rendered by FluidSynth."""
    tonic, scale = key.split(" ")
    pc = pretty_midi.note_name_to_number(f"{tonic}0") % 12
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    piano, bass = pretty_midi.Instrument(0), pretty_midi.Instrument(33)
    bar = 4 * 60 / bpm
    for b in range(bars):
        chord, t = _PROGRESSION[scale][b % 4], b * bar
        base = 60 + pc if pc < 6 else 48 + pc
        piano.notes += [pretty_midi.Note(80, base + iv, t, t + bar * 0.95) for iv in chord]
        bass.notes.append(pretty_midi.Note(90, 36 + pc + chord[0], t, t + bar * 0.9))
    pm.instruments += [piano, bass]
    return pm.fluidsynth(fs=SR).astype(np.float32)


@pytest.fixture(scope="module")
def essentia_only() -> tuple[measure.TempoPlan, EvaluateParams]:
    p = parse_params({"evaluate": {"tempo": {"deeprhythm_weights": "/nonexistent/deeprhythm-0.7.pth"}}}).evaluate
    return measure.plan_tempo(p), p


def _measured_bpm(audio: np.ndarray, plan: measure.TempoPlan, p: EvaluateParams) -> float | None:
    return measure.measure_audio(audio, plan, p).tempo_bpm["essentia"]


# ---- definitions -------------------------------------------------------------------------


def test_tempo_tolerances_follow_the_definitions():
    assert metrics.tempo_hits(120.0, 120.0, 0.02) == (True, True)
    off = 120 * 1.025  # 2.5% fast: fails Acc1 at 2%, passes at 4% (MIREX)
    assert metrics.tempo_hits(off, 120.0, 0.02) == (False, False)
    assert metrics.tempo_hits(off, 120.0, 0.04) == (True, True)
    for factor in (2, 3, 1 / 2, 1 / 3):  # octave errors: Acc2 only
        assert metrics.tempo_hits(120.0 * factor, 120.0, 0.02) == (False, True), factor
    assert metrics.tempo_hits(120.0 * 1.5, 120.0, 0.04) == (False, False)
    assert metrics.tempo_hits(None, 120.0, 0.04) == (False, False)
    scores = metrics.tempo_scores([(120.0, 120.0), (off, 120.0), (60.0, 120.0), (None, 120.0)], TOLERANCES)
    assert scores == {"n": 4, "acc1_2pct": 0.25, "acc2_2pct": 0.5, "acc1_4pct": 0.5, "acc2_4pct": 0.75}
    assert metrics.tempo_scores([], TOLERANCES)["acc1_2pct"] is None  # no items: no figure, not 0


def test_key_scores_follow_mirex_and_the_definitions():
    cases = {  # measured vs requested C major: (exact, key only, MIREX weighted)
        "C major": (True, True, 1.0),
        "G major": (False, False, 0.5),  # fifth
        "A minor": (False, False, 0.3),  # relative
        "C minor": (False, True, 0.2),  # parallel: the tonic is right
        "F# major": (False, False, 0.0),
    }
    for measured, (exact, only, weighted) in cases.items():
        assert metrics.key_exact(measured, "C major") is exact, measured
        assert metrics.key_only(measured, "C major") is only, measured
        assert metrics.key_weighted(measured, "C major") == pytest.approx(weighted), measured
    assert metrics.key_exact("Db major", "C# major") and metrics.canonical_key("Db minor") == "C# minor"
    assert metrics.key_exact(None, "C major") is False and metrics.key_weighted(None, "C major") == 0.0
    scores = metrics.key_scores([(m, "C major") for m in cases])
    assert scores == {"n": 5, "exact": 0.2, "key_only": 0.4, "weighted": 0.4}


# ---- rendered audio of known truth ---------------------------------------------------------


def test_click_tracks_at_the_requested_tempo_score_one(essentia_only):
    plan, p = essentia_only
    pairs = [(_measured_bpm(clicks(bpm), plan, p), float(bpm)) for bpm in (75, 120, 160)]
    assert metrics.tempo_scores(pairs, TOLERANCES) == {
        "n": 3, "acc1_2pct": 1.0, "acc2_2pct": 1.0, "acc1_4pct": 1.0, "acc2_4pct": 1.0,
    }  # fmt: skip


def test_shifted_click_tracks_score_as_defined(essentia_only):
    plan, p = essentia_only
    fast = _measured_bpm(clicks(123.0), plan, p)  # asked for 120: 2.5% fast
    assert metrics.tempo_hits(fast, 120.0, 0.02) == (False, False)
    assert metrics.tempo_hits(fast, 120.0, 0.04) == (True, True)
    half = _measured_bpm(clicks(90.0), plan, p)  # asked for 180: half tempo
    for t in TOLERANCES:
        assert metrics.tempo_hits(half, 180.0, t) == (False, True)


def test_chord_loops_in_the_requested_key_score_one_and_shifted_ones_as_defined(essentia_only):
    plan, p = essentia_only
    keys = ("C major", "A minor", "G major", "F# major", "C minor")
    measured = {k: measure.measure_audio(chord_loop(k), plan, p).key for k in keys}
    assert metrics.key_scores([(measured[k], k) for k in keys]) == {
        "n": 5, "exact": 1.0, "key_only": 1.0, "weighted": 1.0,
    }  # fmt: skip
    # The same audio against other requests: fifth, relative, parallel, unrelated.
    shifted = [(measured["G major"], "C major"), (measured["A minor"], "C major"), (measured["C minor"], "C major")]
    shifted.append((measured["F# major"], "C major"))
    assert metrics.key_scores(shifted) == {"n": 4, "exact": 0.0, "key_only": 0.25, "weighted": 0.25}


def test_silence_is_not_measured(essentia_only):
    plan, p = essentia_only
    m = measure.measure_audio(np.zeros(SR * 2, dtype=np.float32), plan, p)
    assert m.tempo_bpm == {"essentia": None} and m.key is None and "silent" in m.note


# ---- estimators ----------------------------------------------------------------------------


def test_missing_deeprhythm_weights_fall_back_to_essentia_and_say_so(tmp_path):
    missing = tmp_path / "deeprhythm-0.7.pth"
    p = parse_params({"evaluate": {"tempo": {"deeprhythm_weights": str(missing)}}}).evaluate
    plan = measure.plan_tempo(p)
    assert plan.primary == "essentia" and plan.estimators == ("essentia",)
    assert plan.description == f"essentia (deeprhythm weights not found at {missing})"


def test_deeprhythm_runs_beside_essentia_when_its_weights_exist(tmp_path):
    """deeprhythm's architecture with random weights: the plumbing, not its accuracy."""
    import torch

    from pipeline.analysis.tempo import import_torchaudio

    import_torchaudio()
    from deeprhythm.model.frame_cnn import DeepRhythmModel

    torch.manual_seed(0)
    weights = tmp_path / "deeprhythm-0.7.pth"
    torch.save(DeepRhythmModel().state_dict(), weights)
    p = parse_params({"evaluate": {"tempo": {"deeprhythm_weights": str(weights)}}}).evaluate
    plan = measure.plan_tempo(p)
    assert plan.primary == "deeprhythm" and plan.estimators == ("deeprhythm", "essentia")
    m = measure.measure_audio(clicks(120.0, 10.0), plan, p)
    assert set(m.tempo_bpm) == {"deeprhythm", "essentia"} and 30 <= m.tempo_bpm["deeprhythm"] <= 286


# ---- grid and summary ----------------------------------------------------------------------


def test_reference_grid_is_the_published_protocol():
    g = parse_params({"evaluate": {"grid": {"tempo_step": 1, "key_prompts_per_key": 8, "dataset_clips": 0}}})
    prompts = grid.build_grid(g.evaluate.grid, [], 10.0, 1234)
    tempo = [p for p in prompts if p.group == "tempo"]
    key = [p for p in prompts if p.group == "key"]
    assert len(tempo) == 2 * (160 - 75 + 1) and {p.genre for p in tempo} == {"rock", "jazz"}
    assert {p.target_bpm for p in tempo} == set(map(float, range(75, 161)))
    assert len(key) == 24 * 8 and len({p.target_key for p in key}) == 24
    per_key = [p for p in key if p.target_key == "F# minor"]
    assert sorted(p.genre for p in per_key) == sorted(["rock", "jazz", "hip hop", "pop"] * 2)
    assert len({p.prompt for p in per_key}) == 8 and all("F# minor" in p.prompt for p in per_key)
    again = grid.build_grid(g.evaluate.grid, [], 10.0, 1234)
    assert again == prompts and len({p.seed for p in prompts}) == len(prompts)


def test_dataset_grid_writes_each_style_from_test_clips():
    clips = [
        make_clip(0, split="test", key="A minor", bpm=120.0, genre_tags=["jazz"]),
        make_clip(1, split="test", key=None, bpm=120.0),  # no key stated: not a template
        make_clip(2, split="train", key="C major", bpm=100.0),  # not the test split
    ]
    g = parse_params({"evaluate": {"grid": {"dataset_clips": None}}}).evaluate.grid
    templates = grid.template_clips(clips, None)
    assert [c.id for c in templates] == [clips[0].id]
    prompts = grid.dataset_prompts(g, templates, 6.0, 1234)
    assert [p.style for p in prompts] == ["natural", "tags", "subset"]
    for p in prompts:
        assert p.target_key == "A minor" and p.target_bpm == 120.0 and p.genre == "jazz"
        assert "120" in p.prompt and "minor" in p.prompt.lower(), p.prompt


def _item(model: str, pid: str, group: str, bpm: float | None, key: str | None, measured_bpm, measured_key):
    return report.EvalItem(
        id=f"{model}/{pid}", model=model, prompt_id=pid, group=group, genre="rock", style="reference",
        prompt="x", seed=1, seconds=6.0, target_bpm=bpm, target_key=key, audio=f"a/{pid}.wav",
        tempo_bpm={"essentia": measured_bpm}, key=measured_key, key_strength=0.5,
    )  # fmt: skip


def test_summary_table_differences_and_reference_rows():
    items = [
        _item("finetune", "tempo/a", "tempo", 120.0, None, 120.0, None),
        _item("finetune", "tempo/b", "tempo", 100.0, None, 50.0, None),
        _item("finetune", "key/a", "key", None, "C major", None, "C major"),
        _item("base", "tempo/a", "tempo", 120.0, None, 90.0, None),
        _item("base", "tempo/b", "tempo", 100.0, None, 50.0, None),
        _item("base", "key/a", "key", None, "C major", None, "A minor"),
    ]
    s = report.summarize(items, ["finetune", "base"], ("essentia",), TOLERANCES)
    assert s["table"]["finetune"]["tempo_acc1_2pct"] == 0.5 and s["table"]["base"]["tempo_acc1_2pct"] == 0.0
    assert s["table"]["finetune"]["tempo_acc2_2pct"] == 1.0 and s["table"]["base"]["key_weighted"] == 0.3
    assert s["differences"]["finetune_minus_base"]["tempo_acc1_2pct"] == 0.5
    assert s["differences"]["finetune_minus_base"]["key_exact"] == 1.0
    assert s["table"]["published_sao_instrumental_finetune"] == {
        "tempo_acc1_2pct": 0.876, "tempo_acc2_2pct": 0.953, "key_exact": 0.26,
    }  # fmt: skip
    assert s["models"]["finetune"]["by_genre"]["rock"]["n"] == 3


def test_clap_score_is_skipped_with_a_note_unless_its_weights_exist(tmp_path):
    from pipeline.evaluate import models

    unset = parse_params({}).evaluate
    assert models.clap_weights(unset, tmp_path) == (
        None, "CLAP score skipped: evaluate.clap_weights is not set (laion-clap 630k-audioset-fusion-best.pt)",
    )  # fmt: skip
    missing = parse_params({"evaluate": {"clap_weights": "models/clap/630k-audioset-fusion-best.pt"}}).evaluate
    path, note = models.clap_weights(missing, tmp_path)
    assert path is None and note.startswith("CLAP score skipped: no weights at models/clap/")
    (tmp_path / "clap.pt").write_bytes(b"weights")
    present = parse_params({"evaluate": {"clap_weights": "clap.pt"}}).evaluate
    assert models.clap_weights(present, tmp_path) == (tmp_path / "clap.pt", None)


def test_comparison_model_is_a_file_a_bundle_or_a_note(tmp_path):
    from pipeline.evaluate import models

    p = parse_params({}).evaluate
    assert models.comparison(p, tmp_path) == (
        None, "comparison model not present: models/pretrained/stable-audio-open-1.0/model.safetensors",
    )  # fmt: skip
    ckpt = tmp_path / p.compare_ckpt
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"weights")
    assert models.comparison(p, tmp_path) == (models.ModelEntry("stable-audio-open-1.0", "ckpt", ckpt), None)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model_config.json").write_text("{}")
    other = parse_params({"evaluate": {"compare_ckpt": "bundle", "compare_name": "base"}}).evaluate
    assert models.comparison(other, tmp_path) == (models.ModelEntry("base", "bundle", bundle), None)
    none = parse_params({"evaluate": {"compare_ckpt": None}}).evaluate
    assert models.comparison(none, tmp_path) == (None, "no comparison model (evaluate.compare_ckpt is null)")
