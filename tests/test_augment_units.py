"""Augment building blocks: transposition within ranges, tempo scaling, phrase ids, FX labels and
config checks, and the seeded per-clip plans with their caps."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pretty_midi
import pytest

from pipeline.augment.coverage import coverage
from pipeline.augment.fx import (
    EFFECTS,
    FxStep,
    apply_chain,
    check_effects,
    distorts,
    fx_labels,
    fx_vocabulary,
    ping_pong,
)
from pipeline.augment.labels import transpose_key
from pipeline.augment.midi_ops import OutOfRangeSkip, scale_tempo, transpose, transpose_key_number
from pipeline.augment.spec import Draw, Plan, bpm_targets, cap_by_phrase, plan_clip, source_bpm
from pipeline.errors import ConfigError
from pipeline.params import ParamsError, parse_params
from pipeline.records import Variant
from tests.augment_factory import PARAMS
from tests.clip_factory import make_clip
from tests.midi_factory import TrackSpec, band, midi_bytes

RANGES = PARAMS.augment.key.ranges


def _pm(data: bytes) -> pretty_midi.PrettyMIDI:
    return pretty_midi.PrettyMIDI(io.BytesIO(data))


def test_transpose_moves_pitched_notes_and_key_signatures_but_not_drums():
    pm = _pm(band(bars=2, key="G"))
    before = [[n.pitch for n in i.notes] for i in pm.instruments]
    report = transpose(pm, 3, {0: "Piano", 1: "Bass"}, RANGES, "fold")
    assert report.folded == report.dropped == 0
    assert [n.pitch for n in pm.instruments[0].notes] == [p + 3 for p in before[0]]
    assert [n.pitch for n in pm.instruments[2].notes] == before[2]  # drums name drums, not notes
    assert pm.key_signature_changes[0].key_number == 10  # G + 3 = Bb major
    assert transpose_key_number(12 + 9, 5) == 12 + 2  # A minor + 5 = D minor


@pytest.mark.parametrize(("policy", "lowest", "count"), [("fold", 34, 2), ("drop", 34, 1)])
def test_notes_leaving_the_range_fold_by_octaves_or_drop(policy, lowest, count):
    bass = TrackSpec("Bass", program=33, notes=[(30, 0, 480, 90), (39, 480, 960, 90)])
    pm = _pm(midi_bytes([bass]))
    report = transpose(pm, -5, {0: "Bass"}, RANGES, policy)  # 30 - 5 = 25 < E1 (28)
    notes = [n.pitch for n in pm.instruments[0].notes]
    assert min(notes) == lowest and len(notes) == count
    assert (report.folded, report.dropped) == ((1, 0) if policy == "fold" else (0, 1))
    with pytest.raises(OutOfRangeSkip, match="outside Bass range 28-67"):
        transpose(_pm(midi_bytes([bass])), -5, {0: "Bass"}, RANGES, "skip")


def test_scale_tempo_keeps_bars_and_changes_the_clock_exactly():
    pm = _pm(band(bars=2, tempos=[(0, 500_000), (1920, 400_000)]))
    starts = [n.start for n in pm.instruments[1].notes]
    scale_tempo(pm, 0.8)
    assert [n.start for n in pm.instruments[1].notes] == pytest.approx([s / 0.8 for s in starts])
    assert pm.get_tempo_changes()[1] == pytest.approx([96.0, 120.0])
    assert len(pm.get_downbeats()) == 2


def test_transpose_key_spells_as_essentia():
    assert transpose_key("F# minor", 2) == "Ab minor"
    assert transpose_key("C major", -1) == "B major"
    assert transpose_key(None, 3) is None


def test_fx_labels_and_vocabulary():
    reverb = FxStep("reverb", "medium", {"room_size": 0.5})
    assert fx_labels([FxStep("ping_pong_delay", "medium", {}), reverb], True) == [
        "Ping Pong Delay", "Medium Reverb", "Wet",
    ]  # fmt: skip
    assert fx_labels([], True) == ["Dry"] and fx_labels([], False) == []
    assert set(fx_vocabulary()) >= {"Low Reverb", "High Reverb", "Ping Pong Delay", "Bitcrushed", "Wet", "Dry"}


def test_ping_pong_alternates_channels():
    x = np.zeros((1000, 2), dtype=np.float32)
    x[0] = 1.0
    y = ping_pong(x, 1000, 0.1, 0.5, 1.0)
    assert y[100, 0] == pytest.approx(1.0) and y[100, 1] == 0
    assert y[200, 1] == pytest.approx(0.5) and y[200, 0] == 0


def test_every_configured_effect_changes_the_sound():
    rng = np.random.default_rng(0)
    x = (0.2 * rng.standard_normal((22050, 2))).astype(np.float32)
    for name, effect in PARAMS.augment.fx.effects.items():
        for level, args in effect.levels.items():
            y = apply_chain(x, 44100, [FxStep(name, level, args)], 120.0)
            assert y.shape == x.shape and np.abs(y - x).max() > 1e-3, (name, level)


def test_bad_fx_params_name_the_key():
    with pytest.raises(ParamsError, match="unknown effects \\['flanger'\\]"):
        parse_params({"augment": {"fx": {"effects": {"flanger": {"levels": {"low": {"rate_hz": 1}}}}}}})
    with pytest.raises(ParamsError, match="unknown arguments \\['size'\\]"):
        parse_params({"augment": {"fx": {"effects": {"reverb": {"levels": {"low": {"size": 1}}}}}}})
    with pytest.raises(ParamsError, match="levels \\['huge'\\] unknown"):
        parse_params({"augment": {"fx": {"effects": {"reverb": {"levels": {"huge": {}}}}}}})
    with pytest.raises(ParamsError, match="non-zero"):
        parse_params({"augment": {"key": {"semitones": [0, 2]}}})
    crush = PARAMS.augment.fx.effects["bitcrush"].model_copy(update={"levels": {"medium": {"bit_depth": -3.0}}})
    bad = PARAMS.augment.fx.model_copy(update={"effects": {"bitcrush": crush}})
    with pytest.raises(ConfigError, match=r"augment\.fx\.effects\.bitcrush\.levels\.medium"):
        check_effects(bad)


def _plans(clip, **augment):
    p = PARAMS.augment.model_copy(update=augment)
    return plan_clip(clip, p, PARAMS.render, PARAMS.run.seed, PARAMS.clip.window_s, True)


def _alt_clip(n=0, **fields):
    clip = make_clip(n, **fields)
    instruments = [i.model_copy(update={"alternatives": ["gm", "electric-piano"] if not i.is_drum else ["gm-kit"]})
                   for i in clip.instruments]  # fmt: skip
    return clip.model_copy(update={"instruments": instruments})


def test_plans_are_seeded_per_clip_and_capped():
    clip = _alt_clip(bpm=100.0, seconds_total=9.6)
    many = _plans(clip, max_variants_per_clip=8)
    assert [q.suffix for q in many] == [q.suffix for q in _plans(clip, max_variants_per_clip=8)]
    assert len(many) == 4 and len({q.suffix for q in many}) == 4  # one led by each axis
    assert {a for q in many for a in q.draw.axes} == {"key", "bpm", "fx", "timbre"}
    assert len(_plans(clip)) == PARAMS.augment.max_variants_per_clip
    assert _plans(clip, kinds=["stem"]) == []
    other = _alt_clip(n=1, bpm=100.0, seconds_total=9.6)
    assert [q.suffix for q in _plans(other, max_variants_per_clip=8)] != [q.suffix for q in many]


def test_bpm_targets_keep_the_clip_in_the_window():
    clip = make_clip(bpm=100.0, seconds_total=19.2)  # 8 bars at 100 BPM: slower would not fit 20 s
    targets = bpm_targets(clip, PARAMS.augment, 20.0)
    assert targets and min(targets) >= 100 * 19.2 / 20.0 and max(targets) <= 125
    assert all(abs(t / 100 - 1) >= 0.04 for t in targets)


def test_cap_by_phrase_keeps_each_clips_first_plans():
    a, b = _alt_clip(0), _alt_clip(1)
    plans = [Plan(c.id, i, Draw(semitones=s)) for c in (a, b) for i, s in enumerate((1, 2, 3))]
    kept, dropped = cap_by_phrase(plans, {a.id: "p", b.id: "p"}, 3)
    assert dropped == 3 and [(q.clip_id, q.index) for q in kept] == [(a.id, 0), (a.id, 1), (b.id, 0)]
    kept, dropped = cap_by_phrase(plans, {a.id: "p", b.id: "q"}, 3)
    assert dropped == 0


def _every_axis_often():
    """Params under which every usable axis leads three variants and joins every other one."""
    a = PARAMS.augment
    return {name: getattr(a, name).model_copy(update={"variants_per_clip": 3, "probability": 1.0})
            for name in ("key", "bpm", "fx", "timbre")}  # fmt: skip


def test_a_clip_without_a_key_gets_no_key_variants():
    axes = _every_axis_often()
    tonal = _plans(_alt_clip(bpm=100.0, seconds_total=9.6), max_variants_per_clip=20, **axes)
    assert any(q.draw.semitones is not None for q in tonal)  # the same params move a stated key
    drums = _alt_clip(programs=((0, True),), key=None, bpm=100.0, seconds_total=9.6)
    plans = _plans(drums, max_variants_per_clip=20, **axes)
    assert plans and all(q.draw.semitones is None and "key" not in q.draw.axes for q in plans)
    assert not any(q.suffix.startswith("k") for q in plans)


def test_a_clip_whose_tempo_varies_is_no_bpm_variant_source():
    axes = _every_axis_often()
    steady = _alt_clip(bpm=100.0, seconds_total=9.6)
    assert bpm_targets(steady, PARAMS.augment, 20.0)
    assert any(q.draw.bpm is not None for q in _plans(steady, max_variants_per_clip=20, **axes))
    varying = _alt_clip(bpm=None, seconds_total=9.6)
    assert varying.bpm is None and not varying.tempo_evidence.steady
    assert bpm_targets(varying, PARAMS.augment, 20.0) == []
    plans = _plans(varying, max_variants_per_clip=20, **axes)
    assert plans and all(q.draw.bpm is None for q in plans)
    # Its other variants still process at a real tempo (the MIDI's), recorded in no BPM transform.
    assert source_bpm(varying) == varying.tempo_evidence.notated_bpm
    assert all(t.axis != "bpm" for q in plans for t in q.transforms(1, source_bpm(varying), "fold"))


def test_coverage_counts_a_withheld_bpm_as_none():
    base = make_clip(bpm=None)
    items = [
        Variant(**v.model_dump(exclude={"id"}), id=f"{v.id}/orig", source_clip=v.id, suffix="orig",
                method="identity", transforms=[], phrase="p", cache_key=None)
        for v in (base, make_clip(n=1, bpm=123.0))
    ]  # fmt: skip
    assert coverage(items)["bpm"] == Counter({"none": 1, "120-129": 1})


def test_distortion_and_bitcrush_are_the_effects_that_distort():
    assert set(EFFECTS) == set(PARAMS.augment.fx.effects)  # every configured effect is in the one table
    assert {name for name, e in EFFECTS.items() if e.distorts} == {"distortion", "bitcrush"}
    steps = {name: FxStep(name, level, args) for name, e in PARAMS.augment.fx.effects.items()
             for level, args in e.levels.items()}  # fmt: skip
    assert distorts([steps["reverb"], steps["bitcrush"]]) and distorts([steps["distortion"]])
    assert not distorts([steps[n] for n in steps if n not in ("distortion", "bitcrush")])
    assert not distorts([])
