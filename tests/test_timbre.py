"""Timbre adjectives: what a prompt says about a sound must be true of the audio."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pretty_midi
import pytest

from pipeline.analysis.timbre import TIMBRE_TAGS, TimbreFeatures, TimbreThresholds, timbre_features, timbre_tags
from pipeline.params import Params
from pipeline.render.events import instrument_events
from pipeline.render.fluid import SoundFontBackend

SR = 44100
OPPOSITES = (("bright", "dark"), ("wide", "mono"), ("gritty", "clean"))


def _t(seconds: float) -> np.ndarray:
    return np.arange(round(seconds * SR)) / SR


def _sine(hz: float, seconds: float = 3.0, amp: float = 0.3) -> np.ndarray:
    return amp * np.sin(2 * np.pi * hz * _t(seconds))


def _saw(hz: float, seconds: float = 3.0) -> np.ndarray:
    """Band-limited sawtooth (additive), peak-normalised to 1."""
    t = _t(seconds)
    y = sum(np.sin(2 * np.pi * k * hz * t) / k for k in range(1, int(SR / 2 / hz)))
    return y / np.abs(y).max()


def _stereo(mono: np.ndarray) -> np.ndarray:
    return np.stack([mono, mono], axis=1).astype(np.float32)


def _noise(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(round(seconds * SR))).astype(np.float32)


def _clicks(seconds: float = 4.0, every_s: float = 0.25, seed: int = 0) -> np.ndarray:
    """A drum-like train: 10 ms noise bursts decaying in ~2 ms."""
    rng = np.random.default_rng(seed)
    y = np.zeros(round(seconds * SR))
    n = round(0.01 * SR)
    for start in np.arange(0, seconds - 0.02, every_s):
        i = round(start * SR)
        y[i : i + n] = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.002 * SR))
    return 0.5 * y / np.abs(y).max()


def _pad(seconds: float = 4.0) -> np.ndarray:
    """A sustained triad of detuned saws fading in over 0.8 s and out over 0.8 s."""
    t = _t(seconds)
    y = sum(_saw(hz * d, seconds) for hz in (220.0, 277.2, 329.6) for d in (0.997, 1.003))
    env = np.minimum(1.0, np.minimum(t / 0.8, (seconds - t) / 0.8))
    return 0.1 * y * env


def _measure(x: np.ndarray) -> tuple[TimbreFeatures, list[str]]:
    f = timbre_features(x, SR)
    return f, timbre_tags(f, TimbreThresholds())


def _render(program: int, notes: list[tuple[int, float, float, int]], drums: bool = False) -> np.ndarray:
    inst = pretty_midi.Instrument(program, is_drum=drums)
    inst.notes = [pretty_midi.Note(v, p, s, e) for p, s, e, v in notes]
    backend = SoundFontBackend(None, 128 if drums else 0, 0 if drums else program, SR)
    events = instrument_events(inst, 9 if drums else 0)
    return np.concatenate(list(backend.render(events, max(n.end for n in inst.notes) + 1.0, SR, 1 << 16)))


# --- brightness, warmth, low end, air --------------------------------------------------------------


def test_a_low_sine_is_dark_and_noise_or_a_high_sine_is_bright():
    low, low_tags = _measure(_stereo(_sine(110)))
    noise, noise_tags = _measure(_stereo(_noise()))
    high, high_tags = _measure(_stereo(_sine(5000)))
    assert low.centroid_hz < high.centroid_hz and low.centroid_hz < noise.centroid_hz
    assert "dark" in low_tags and "bright" not in low_tags
    assert "bright" in noise_tags and "dark" not in noise_tags
    assert "bright" in high_tags and "dark" not in high_tags
    assert low.rolloff_hz < 200 and noise.rolloff_hz > 15000


def test_energy_in_the_low_mids_is_warm_and_bright_or_thin_sounds_are_not():
    body = _stereo(sum(_sine(hz, amp=0.1) for hz in (180.0, 260.0, 350.0)))
    f, tags = _measure(body)
    assert f.low_mid_share > 0.95 and "warm" in tags
    for other in (_stereo(_noise()), _stereo(_sine(3000)), _stereo(_sine(45))):
        assert "warm" not in _measure(other)[1]


def test_sub_bass_and_air():
    sub, sub_tags = _measure(_stereo(_sine(45)))
    assert sub.sub_share > 0.7 and "sub-heavy" in sub_tags and "airy" not in sub_tags
    noise, noise_tags = _measure(_stereo(_noise()))
    assert noise.air_share > 0.5 and "airy" in noise_tags and "sub-heavy" not in noise_tags


# --- stereo width ----------------------------------------------------------------------------------


def test_identical_channels_are_mono_and_not_wide():
    f, tags = _measure(_stereo(_noise()))
    assert f.channel_correlation == pytest.approx(1.0) and f.side_share == pytest.approx(0.0, abs=1e-4)
    assert "mono" in tags and "wide" not in tags


def test_a_panned_mono_source_is_still_mono():
    x = _noise()
    for left, right in ((0.3, 1.0), (1.0, 0.0)):  # panned, and hard to the left
        f, tags = _measure(np.stack([left * x, right * x], axis=1))
        assert f.channel_correlation == pytest.approx(1.0) and "mono" in tags and "wide" not in tags


def test_decorrelated_channels_are_wide():
    x = np.stack([_noise(seed=1), _noise(seed=2)], axis=1)
    f, tags = _measure(x)
    assert abs(f.channel_correlation) < 0.05 and f.side_share == pytest.approx(0.5, abs=0.02)
    assert "wide" in tags and "mono" not in tags


# --- punch and dynamics ----------------------------------------------------------------------------


def test_a_train_of_clicks_is_punchy_and_a_sustained_pad_is_not():
    clicks, click_tags = _measure(_stereo(_clicks()))
    pad, pad_tags = _measure(_stereo(_pad()))
    assert clicks.punch_db > 8 and "punchy" in click_tags
    assert pad.punch_db < 1 and "punchy" not in pad_tags
    assert clicks.crest_db > pad.crest_db + 6


def test_a_quiet_then_loud_part_is_dynamic_and_a_steady_tone_is_not():
    steady = _stereo(_sine(440, 16.0))
    verse_chorus = _stereo(np.concatenate([_sine(440, 8.0, amp=0.3 * 10 ** (-16 / 20)), _sine(440, 8.0)]))
    f, tags = _measure(steady)
    assert f.loudness_range_db < 1 and "dynamic" not in tags
    f, tags = _measure(verse_chorus)
    assert 14 < f.loudness_range_db < 17 and "dynamic" in tags


# --- grit ------------------------------------------------------------------------------------------


def test_hard_clipping_is_gritty_while_clean_and_softly_saturated_tones_are_not():
    sine = _sine(220, amp=1.0)
    saw = _saw(110)
    clean = {"sine": sine, "saw": saw}
    soft = {"sine": np.tanh(1.5 * sine), "saw": np.tanh(1.5 * saw)}
    hard = {"sine": np.clip(8 * sine, -1, 1), "saw": np.clip(4 * saw, -1, 1)}
    for name in ("sine", "saw"):
        fc, clean_tags = _measure(_stereo(0.5 * clean[name]))
        fs, soft_tags = _measure(_stereo(0.5 * soft[name]))
        fh, hard_tags = _measure(_stereo(0.5 * hard[name]))
        assert "clean" in clean_tags and "gritty" not in clean_tags, name
        assert "gritty" not in soft_tags, name
        assert "gritty" in hard_tags and "clean" not in hard_tags, name
        assert fh.grit > 2 * max(fc.grit, fs.grit), name
        assert fh.saturation > 0.6 > fs.saturation, name


def test_noise_is_neither_gritty_nor_clean():
    f, tags = _measure(_stereo(_noise()))
    assert f.noisiness > 0.5
    assert "gritty" not in tags and "clean" not in tags


# --- robustness ------------------------------------------------------------------------------------


@pytest.mark.parametrize("before, after", [(3333, 0), (int(2.7 * SR), int(1.3 * SR)), (40960, 7 * 1024)])
def test_silence_around_the_audio_changes_nothing(before, after):
    signals = [_stereo(_clicks()), _stereo(_pad()), np.stack([_noise(seed=1), _noise(seed=2)], axis=1)]
    for x in signals:
        f, tags = _measure(x)
        padded = np.concatenate([np.zeros((before, 2), np.float32), x, np.zeros((after, 2), np.float32)])
        g, padded_tags = _measure(padded)
        assert padded_tags == tags
        for key, value in dataclasses.asdict(f).items():
            abs_tol = 0.3 if key.endswith("_db") else 0.02
            assert getattr(g, key) == pytest.approx(value, rel=0.05, abs=abs_tol), key


def test_a_sparse_part_is_judged_by_its_notes_not_its_silence():
    note = _stereo(_sine(110, 0.5))
    sparse = np.concatenate([np.concatenate([note, np.zeros((3 * SR, 2), np.float32)]) for _ in range(4)])
    f, tags = _measure(sparse)
    dense = timbre_features(np.concatenate([note] * 4), SR)
    assert f.centroid_hz == pytest.approx(dense.centroid_hz, rel=0.05)
    assert "dark" in tags and "mono" in tags
    assert f.active_s == pytest.approx(2.0, abs=0.15)


def test_silence_has_no_adjectives_and_features_are_plain_rounded_floats():
    f, tags = _measure(np.zeros((SR, 2), np.float32))
    assert f.active_s == 0 and tags == []
    f, tags = _measure(_stereo(_pad()))
    values = dataclasses.asdict(f)
    assert all(type(v) is float for v in values.values())
    assert json.loads(json.dumps(values)) == values
    assert timbre_features(_stereo(_pad()), SR) == f  # deterministic


def test_mono_input_is_accepted():
    assert timbre_features(_sine(110), SR) == timbre_features(_stereo(_sine(110)), SR)
    with pytest.raises(ValueError):
        timbre_features(np.zeros((100, 3)), SR)


def test_tags_come_from_the_vocabulary_sorted_and_never_opposites():
    signals = [_sine(110), _sine(5000), _noise(), _clicks(), _pad(), np.clip(8 * _sine(220, amp=1.0), -1, 1)]
    signals = [_stereo(s) for s in signals] + [np.stack([_noise(seed=1), _noise(seed=2)], axis=1)]
    for x in signals:
        tags = _measure(x)[1]
        assert tags == sorted(tags) and set(tags) <= set(TIMBRE_TAGS)
        for a, b in OPPOSITES:
            assert not (a in tags and b in tags)
    assert tuple(sorted(TIMBRE_TAGS)) == TIMBRE_TAGS


def test_thresholds_are_flat_floats_and_opposites_cannot_overlap():
    t = TimbreThresholds()
    assert all(type(v) is float for v in t.model_dump().values())
    assert TimbreThresholds(**t.model_dump()) == t == Params().tag.timbre  # the params section is this model
    with pytest.raises(ValueError, match="dark_centroid_hz"):
        TimbreThresholds(dark_centroid_hz=3000.0, bright_centroid_hz=2000.0)
    with pytest.raises(ValueError, match="clean_grit"):
        TimbreThresholds(clean_grit=0.6)
    # thresholds move the tags
    f = timbre_features(_stereo(_sine(110)), SR)
    assert "dark" not in timbre_tags(f, TimbreThresholds(dark_centroid_hz=100.0))


# --- real renders (FluidSynth, the GM SoundFont) ---------------------------------------------------


@pytest.fixture(scope="module")
def renders():
    hats = [(42, i * 0.125, i * 0.125 + 0.06, 90 + 20 * (i % 2)) for i in range(32)]
    hats += [(49, 0.0, 1.0, 100), (46, 2.0, 2.5, 100)]  # a crash and an open hat
    bassline = [(p, i * 0.25, i * 0.25 + 0.22, 100) for i, p in enumerate([36, 36, 43, 48, 41, 41, 36, 43] * 2)]
    # The same low power-chord riff for both guitars: root, fifth, octave in eighths.
    riff = [(p, k * 0.5, k * 0.5 + 0.45, 110) for k, r in enumerate([40, 43, 45, 38, 40, 47, 45, 43])
            for p in (r, r + 7, r + 12)]  # fmt: skip
    return {
        "hats": _render(0, hats, drums=True),
        "bass": _render(33, bassline),  # Electric Bass (finger)
        "distortion": _render(30, riff),  # Distortion Guitar
        "nylon": _render(24, riff),  # Acoustic Guitar (nylon)
    }


def test_gm_hi_hats_are_brighter_than_a_gm_bass(renders):
    hats, hat_tags = _measure(renders["hats"])
    bass, bass_tags = _measure(renders["bass"])
    assert hats.centroid_hz > 4 * bass.centroid_hz
    assert "bright" in hat_tags and "dark" not in hat_tags
    assert "dark" in bass_tags and "bright" not in bass_tags
    assert "airy" in hat_tags and "warm" in bass_tags
    assert "gritty" not in hat_tags  # noise-like: grit is not judged


def test_a_gm_distortion_guitar_is_grittier_than_a_nylon_guitar_on_the_same_notes(renders):
    dist, dist_tags = _measure(renders["distortion"])
    nylon, nylon_tags = _measure(renders["nylon"])
    assert dist.grit > 5 * nylon.grit
    assert dist.upper_partial_share > 3 * nylon.upper_partial_share
    assert "gritty" in dist_tags and "clean" not in dist_tags
    assert "clean" in nylon_tags and "gritty" not in nylon_tags
    assert dist.centroid_hz > nylon.centroid_hz
