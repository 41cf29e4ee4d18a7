"""Variants on real renders: their labels are what the audio holds (essentia key, onsets), FX and
timbre change the sound, outputs are byte-identical, and a cached variant renders nothing."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

import pipeline.augment.rerender as rerender
from pipeline.analysis.key import audio_key
from pipeline.augment.fx import FxStep
from pipeline.augment.make import ItemJob, ItemResult, make_item
from pipeline.augment.spec import Draw, Plan
from pipeline.errors import ItemError
from tests.audio_checks import onsets
from tests.augment_factory import PARAMS, clicks, config, make_clip, progression

MIDI = {"key": "midi", "bpm": "midi"}
AUDIO = {"key": "audio", "bpm": "audio"}
REVERB_HIGH = FxStep("reverb", "high", PARAMS.augment.fx.effects["reverb"].levels["high"])
DELAY_HIGH = FxStep("delay", "high", PARAMS.augment.fx.effects["delay"].levels["high"])
DISTORTION_LOW = FxStep("distortion", "low", PARAMS.augment.fx.effects["distortion"].levels["low"])


def _make(root, clip, draw, methods=MIDI, cache=None, **augment) -> ItemResult:
    plan = Plan(clip.id, 0, draw, dict(methods))
    return make_item(ItemJob(clip, plan, "phrase"), config(root, cache, **augment))


def _read(root, rel) -> tuple[np.ndarray, int]:
    x, sr = sf.read(str(root / rel), dtype="float32", always_2d=True)
    return x, sr


@pytest.fixture(scope="module")
def chords(tmp_path_factory):
    root = tmp_path_factory.mktemp("chords")
    return root, make_clip(root, progression())


@pytest.fixture(scope="module")
def click(tmp_path_factory):
    root = tmp_path_factory.mktemp("click")
    return root, make_clip(root, clicks(), bpm=120.0, bars=4, key=None, mido_key=None)


@pytest.mark.parametrize(("semitones", "label"), [(3, "Eb major"), (-2, "Bb major"), (6, "F# major")])
def test_transposed_variant_sounds_in_its_new_key(chords, semitones, label):
    root, clip = chords
    x, sr = _read(root, clip.audio)
    assert audio_key(x.mean(axis=1), sr, PARAMS.tag.key.profile).label == "C major"
    v = _make(root, clip, Draw(semitones=semitones)).variant
    assert v is not None and v.key == label and v.method == "midi"
    assert [t.name for t in v.transforms] == ["transpose_midi"]
    y, _ = _read(root, v.audio)
    assert audio_key(y.mean(axis=1), sr, PARAMS.tag.key.profile).label == label
    pm = pretty_midi.PrettyMIDI(str(root / v.midi))  # the variant's own notes, key signature moved too
    assert pm.key_signature_changes[0].key_number == semitones % 12
    assert v.id == f"{clip.id}/k{semitones:+d}" and v.split == clip.split and v.bpm == clip.bpm
    ev = v.key_evidence  # the evidence moved with the notes: it names the variant's key, not the source's
    assert ev.notes == ev.signature == ev.audio == label and v.tempo_evidence == clip.tempo_evidence


def test_pitch_shifted_audio_variant_is_labelled_with_its_key(chords):
    root, clip = chords
    v = _make(root, clip, Draw(semitones=2), methods=AUDIO).variant
    assert v is not None and v.method == "audio" and v.transforms[0].name == "pitch_shift_audio"
    y, sr = _read(root, v.audio)
    assert audio_key(y.mean(axis=1), sr, PARAMS.tag.key.profile).label == v.key == "D major"


@pytest.mark.parametrize(("methods", "tolerance_s"), [(MIDI, 0.003), (AUDIO, 0.015)])
def test_tempo_variant_onsets_fall_on_the_new_beat(click, methods, tolerance_s):
    root, clip = click
    x, sr = _read(root, clip.audio)
    source = onsets(x, sr)
    assert len(source) == 16
    latency = source[0]  # the woodblock's attack, the same at any tempo
    v = _make(root, clip, Draw(bpm=96.0), methods=methods).variant
    assert v is not None and v.bpm == 96.0 and v.bars == clip.bars
    tempo = v.tempo_evidence  # at the variant's tempo, as its own MIDI states it
    assert tempo.notated_bpm == tempo.min_bpm == tempo.max_bpm == tempo.felt_bpm == 96.0 and tempo.steady
    assert v.seconds_total == pytest.approx(clip.seconds_total * 120 / 96, abs=1e-4)
    y, _ = _read(root, v.audio)
    assert len(y) == round(v.seconds_total * sr)
    measured = onsets(y, sr)
    expected = latency + np.arange(16) * 60 / 96
    assert len(measured) == 16
    assert np.abs(measured - expected).max() < tolerance_s


def test_fx_variants_differ_from_dry_and_carry_their_labels(chords):
    root, clip = chords
    dry, _ = _read(root, clip.audio)
    one = _make(root, clip, Draw(chain=(REVERB_HIGH,))).variant
    two = _make(root, clip, Draw(chain=(REVERB_HIGH, DISTORTION_LOW))).variant
    assert one is not None and two is not None
    assert one.fx == ["High Reverb", "Wet"] and one.id.endswith("/fx-reverb-high")
    assert two.fx == ["Low Distortion", "High Reverb", "Wet"]  # signal-chain order
    assert one.method == "audio" and one.key == clip.key and one.bpm == clip.bpm
    for v in (one, two):
        wet, _ = _read(root, v.audio)
        assert wet.shape == dry.shape
        assert np.sqrt(np.mean((wet - dry) ** 2)) > 0.01
    assert one.timbre_features != clip.timbre_features  # measured again on the wet audio
    assert two.energy is None and two.acousticness is None  # no longer the source's
    plain = _make(root, clip, Draw(semitones=1)).variant
    assert plain is not None and plain.fx == ["Dry"]
    unlabelled = _make(root, clip, Draw(semitones=1), fx=PARAMS.augment.fx.model_copy(update={"wet_dry_labels": False}))
    assert unlabelled.variant is not None and unlabelled.variant.fx == []


def test_timbre_variant_uses_another_patch_and_is_described_by_it(chords):
    root, clip = chords
    piano = clip.instruments[0]
    v = _make(root, clip, Draw(patches=((piano.track_id, "electric-piano"),))).variant
    assert v is not None and v.method == "midi"
    new = v.instruments[0]
    assert new.patch == "electric-piano" != piano.patch
    assert (new.program, new.name, new.family) == (4, "Electric Piano 1", "Piano")
    assert v.instruments[1] == clip.instruments[1]  # the bass is untouched
    y, _ = _read(root, v.audio)
    x, _ = _read(root, clip.audio)
    assert np.sqrt(np.mean((y - x) ** 2)) > 0.01
    assert v.timbre_features != clip.timbre_features


def test_outputs_are_byte_identical(chords, tmp_path):
    root, clip = chords
    draw = Draw(semitones=-3, bpm=132.0, chain=(REVERB_HIGH,))
    first = _make(root, clip, draw, cache=tmp_path / "a").variant
    data = (root / first.audio).read_bytes()
    midi = (root / first.midi).read_bytes()
    second = _make(root, clip, draw, cache=tmp_path / "b").variant
    assert second == first
    assert (root / second.audio).read_bytes() == data and (root / second.midi).read_bytes() == midi


def test_a_cached_variant_renders_nothing(chords, tmp_path, monkeypatch):
    root, clip = chords
    calls = []
    real = rerender.render_part
    monkeypatch.setattr(rerender, "render_part", lambda *a, **k: calls.append(1) or real(*a, **k))
    draw = Draw(semitones=4, patches=((clip.instruments[1].track_id, "synth-bass"),))
    cold = _make(root, clip, draw, cache=tmp_path)
    assert not cold.cached and cold.rendered_parts == 2 and len(calls) == 2
    warm = _make(root, clip, draw, cache=tmp_path)
    assert warm.cached and warm.rendered_parts == 0 and len(calls) == 2
    assert warm.variant == cold.variant


def test_stem_variant_renders_only_its_instrument(tmp_path):
    clip = make_clip(tmp_path, progression(bars=4), bars=4, stem=1)
    v = _make(tmp_path, clip, Draw(semitones=-5)).variant
    assert v is not None and v.kind == "stem" and len(v.instruments) == 1
    assert v.instruments[0].notation.pitch_register == "low" and v.key == "G major"


def test_out_of_range_transposition_is_skipped_when_asked(tmp_path):
    clip = make_clip(tmp_path, progression(bars=4, root=54), bars=4, key="F# major", mido_key="F#")
    key = PARAMS.augment.key.model_copy(update={"out_of_range": "skip"})
    result = _make(tmp_path, clip, Draw(semitones=-6), key=key)  # the bass goes below E1
    assert result.variant is None and "outside Bass range" in (result.skipped or "")
    folded = _make(tmp_path, clip, Draw(semitones=-6)).variant  # default: fold by octaves
    assert folded is not None
    pm = pretty_midi.PrettyMIDI(str(tmp_path / folded.midi))
    assert min(n.pitch for n in pm.instruments[1].notes) >= PARAMS.augment.key.ranges["Bass"][0]


def test_a_clip_whose_tempo_varies_keeps_no_bpm_in_its_variants_and_takes_tempo_synced_fx(tmp_path):
    clip = make_clip(tmp_path, progression(bars=4), bars=4, second_half_bpm=90.0)
    assert clip.bpm is None and 90 < clip.tempo_evidence.notated_bpm < 120
    delayed = _make(tmp_path, clip, Draw(chain=(DELAY_HIGH,))).variant  # tempo-synced: needs a real tempo
    assert delayed is not None and delayed.bpm is None and delayed.fx == ["High Delay", "Wet"]
    moved = _make(tmp_path, clip, Draw(semitones=2))
    assert moved.variant is not None and moved.variant.bpm is None and moved.variant.key == "D major"
    x, _ = sf.read(str(tmp_path / clip.audio), dtype="float32", always_2d=True)
    y, _ = sf.read(str(tmp_path / delayed.audio), dtype="float32", always_2d=True)
    assert y.shape == x.shape and np.sqrt(np.mean((y - x) ** 2)) > 0.01
    with pytest.raises(ItemError, match="states no BPM"):
        _make(tmp_path, clip, Draw(bpm=100.0))
