"""Timbre and FX that agree, on real renders: every variant's adjectives are measured on its final
audio (after FX), a chain that distorts (distortion, bitcrush) never leaves 'clean' in its tags,
sidecar or prompt, 'mono' / 'wide' follow the measured stereo image, and a variant whose processing
leaves it near-silent is dropped with its reason."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import pipeline.augment.rerender as rerender
from pipeline.analysis.tag import timbre_values
from pipeline.analysis.timbre import TimbreThresholds
from pipeline.augment.dataset import write_sidecar
from pipeline.augment.fx import FxStep
from pipeline.augment.make import ItemJob, ItemResult, make_item
from pipeline.augment.prompting import attach_prompts
from pipeline.augment.spec import Draw, Plan
from pipeline.prompts.writer import PromptWriter
from tests.augment_factory import PARAMS, clicks, config, make_clip, progression
from tests.midi_factory import TrackSpec

EFFECTS = PARAMS.augment.fx.effects
T = TimbreThresholds()
MIDI = {"key": "midi", "bpm": "midi"}


def _step(name: str, level: str) -> FxStep:
    return FxStep(name, level, EFFECTS[name].levels[level])


CRUSH = sorted(EFFECTS["bitcrush"].levels)[0]
DISTORTING = {
    "distortion-low": (_step("distortion", "low"),),
    "distortion-medium": (_step("distortion", "medium"),),
    "distortion-high": (_step("distortion", "high"),),
    "bitcrush": (_step("bitcrush", CRUSH),),
    "distortion+reverb": (_step("distortion", "low"), _step("reverb", "high")),
    "bitcrush+chorus": (_step("bitcrush", CRUSH), _step("chorus", "medium")),
}
DISTORTION_LABELS = ("Distortion", "Bitcrushed")


def _lead(bars: int = 4) -> list[TrackSpec]:
    """A square-wave lead (GM 80) arpeggio: a bright, clean, mono sound."""
    spec = TrackSpec("Lead", program=80, channel=0)
    for beat in range(bars * 4):
        spec.notes.append((72 + (0, 4, 7, 12)[beat % 4], beat * 480, beat * 480 + 440, 100))
    return [spec]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Clean, mono sources: a piano-and-bass mix, its bass and piano stems, a lead, a woodblock."""
    root = tmp_path_factory.mktemp("fx-timbre")
    made = {
        "mix": make_clip(root, progression(bars=4), bars=4),
        "bass": make_clip(root, progression(bars=4), bars=4, stem=1),
        "piano": make_clip(root, progression(bars=4), bars=4, stem=0),
        "lead": make_clip(root, _lead(), bars=4, n=2, midi_name="lead"),
        "click": make_clip(root, clicks(), bars=4, n=1, key=None, mido_key=None, midi_name="click"),
    }
    for clip in made.values():
        assert "clean" in clip.timbre and "mono" in clip.timbre  # the dry sources are clean and mono
    return root, made


def _make(root, clip, chain, **augment) -> ItemResult:
    return make_item(ItemJob(clip, Plan(clip.id, 0, Draw(chain=tuple(chain)), dict(MIDI)), "phrase"),
                     config(root, **augment))  # fmt: skip


def _final_features(root, v) -> dict[str, float]:
    x, sr = sf.read(str(root / v.audio), dtype="float32", always_2d=True)
    return timbre_values(x, sr)


def _image_agrees(v) -> None:
    corr = v.timbre_features["channel_correlation"]
    assert ("mono" in v.timbre) == (corr >= T.mono_correlation)
    assert ("wide" in v.timbre) == (corr <= T.wide_correlation)


@pytest.mark.parametrize("chain", DISTORTING, ids=list(DISTORTING))
def test_a_distorting_chain_never_leaves_clean(clips, chain):
    root, made = clips
    for name, clip in made.items():
        v = _make(root, clip, DISTORTING[chain]).variant
        assert v is not None
        assert any(label.endswith(DISTORTION_LABELS) for label in v.fx)
        assert "clean" not in v.timbre, f"{name}: {v.fx} tagged {v.timbre}"
        assert v.timbre_features == _final_features(root, v)  # measured on the file as written, after FX
        _image_agrees(v)


def test_the_stereo_image_label_follows_the_final_audio(clips):
    root, made = clips
    for name, clip in made.items():
        wide = _make(root, clip, [_step("reverb", "high")]).variant  # a stereo room around a mono source
        assert wide is not None and wide.timbre_features == _final_features(root, wide)
        assert "wide" in wide.timbre and "mono" not in wide.timbre, f"{name}: {wide.timbre}"
        bounced = _make(root, clip, [_step("ping_pong_delay", "medium")]).variant  # echoes left, right: not mono
        assert bounced is not None and "mono" not in bounced.timbre
        chorus = _make(root, clip, [_step("chorus", "medium")]).variant  # pedalboard's chorus: both sides alike
        assert chorus is not None
        for v in (wide, bounced, chorus):
            _image_agrees(v)


def test_no_sidecar_or_prompt_says_clean_and_distortion(clips, tmp_path):
    root, made = clips
    variants = [v for clip in made.values() for chain in DISTORTING.values()
                if (v := _make(root, clip, chain).variant) is not None]  # fmt: skip
    writer = PromptWriter(PARAMS.prompts.model_copy(update={"cache_dir": str(tmp_path / "prompts")}),
                          PARAMS.run.seed, root, None, stage="augment")  # fmt: skip
    prompted = attach_prompts(variants, {}, writer.write)
    assert not prompted.failures and len(prompted.items) == len(variants) == 30
    for v in prompted.items:
        write_sidecar(root, v)
        sidecar = json.loads((root / v.sidecar).read_text())
        assert any(label.endswith(DISTORTION_LABELS) for label in sidecar["fx"])
        assert "clean" not in sidecar["timbre"], (sidecar["id"], sidecar["timbre"], sidecar["fx"])
        assert "clean" not in sidecar["prompt"].lower(), sidecar["prompt"]


def test_a_variant_that_processing_leaves_near_silent_is_dropped(clips):
    root, made = clips
    clip = made["click"]  # a woodblock: a low-pass at 20 Hz leaves almost nothing of it
    result = _make(root, clip, [FxStep("lowpass", "medium", {"cutoff_frequency_hz": 20.0})])
    assert result.variant is None
    assert result.dropped is not None and result.dropped.startswith("near-silent")
    assert f"clip.silence_lufs {PARAMS.clip.silence_lufs:g}" in result.dropped
    assert not any((root / "data/augment/dataset").rglob("*fx-lowpass*"))  # nothing written
    again = _make(root, clip, [FxStep("lowpass", "medium", {"cutoff_frequency_hz": 20.0})])
    assert again.variant is None and again.dropped == result.dropped  # the same on a re-run
    audible = _make(root, clip, [FxStep("lowpass", "medium", {"cutoff_frequency_hz": 3000.0})])
    assert audible.variant is not None and audible.dropped is None
    assert audible.variant.loudness_lufs > PARAMS.clip.silence_lufs


def test_a_near_silent_re_render_is_dropped_not_normalised_up(clips, monkeypatch, tmp_path):
    root, made = clips
    clip = made["bass"]
    real = rerender.render_part
    monkeypatch.setattr(rerender, "render_part", lambda *a, **k: real(*a, **k) * np.float32(1e-5))  # -100 dB
    result = make_item(ItemJob(clip, Plan(clip.id, 0, Draw(semitones=2), dict(MIDI)), "phrase"),
                       config(root, tmp_path))  # fmt: skip
    assert result.variant is None and result.dropped is not None
    assert "as re-rendered" in result.dropped and "mix.silence_lufs" in result.dropped
    monkeypatch.undo()
    loud = make_item(ItemJob(clip, Plan(clip.id, 0, Draw(semitones=2), dict(MIDI)), "phrase"), config(root, tmp_path))
    assert loud.variant is not None and loud.dropped is None


def _clean_guitar(bars: int = 4) -> list[TrackSpec]:
    """GM 27 'Electric Guitar (clean)' strumming E, A, B, E triads."""
    spec = TrackSpec("Guitar", program=27, channel=0)
    for beat in range(bars * 4):
        root = 52 + (0, 5, 7, 0)[beat // 4 % 4]
        spec.notes += [(root + p, beat * 480, beat * 480 + 400, 90) for p in (0, 7, 12)]
    return [spec]


def test_a_clean_guitar_through_distortion_is_named_clean_no_more(tmp_path):
    clip = make_clip(tmp_path, _clean_guitar(), bars=4, stem=0, key="E major", mido_key="E")
    guitar = clip.instruments[0]
    assert (guitar.name, guitar.subfamily) == ("Electric Guitar (clean)", "clean electric guitar")
    variants = [_make(tmp_path, clip, chain).variant for chain in DISTORTING.values()]
    roomy = _make(tmp_path, clip, [_step("reverb", "high")]).variant  # no distortion: still the clean guitar
    assert roomy is not None and roomy.instruments[0].name == "Electric Guitar (clean)"
    writer = PromptWriter(PARAMS.prompts.model_copy(update={"cache_dir": str(tmp_path / "prompts")}),
                          PARAMS.run.seed, tmp_path, None, stage="augment")  # fmt: skip
    prompted = attach_prompts(variants, {}, writer.write)
    assert not prompted.failures and len(prompted.items) == len(DISTORTING)
    for v in prompted.items:
        new = v.instruments[0]
        assert (new.name, new.subfamily, new.program) == ("Electric Guitar", "distorted electric guitar", 27)
        write_sidecar(tmp_path, v)
        sidecar = json.loads((tmp_path / v.sidecar).read_text())
        for inst in sidecar["instruments"]:
            inst.pop("alternatives")  # the rule's patch names ('clean-guitar', ...): ids, not descriptions
        text = json.dumps(sidecar)
        assert "Distortion" in text or "Bitcrushed" in text
        assert "clean" not in text.lower(), v.id
        assert "clean" not in (v.prompt or "").lower(), v.prompt
