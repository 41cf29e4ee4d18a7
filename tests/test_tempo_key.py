"""Tempo and key: deeprhythm's real model code on weights the test makes, essentia on real
renders, the MIDI truth, and the agreement measures."""

from __future__ import annotations

import io

import numpy as np
import pretty_midi
import pytest

from pipeline.analysis.key import KeyLabel, midi_key, relation
from pipeline.analysis.tempo import (
    DeepRhythmTempo,
    EssentiaTempo,
    beat_tempo,
    find_deeprhythm_weights,
    midi_tempo,
    plan_tempo,
    tempo_accuracy,
)
from pipeline.errors import ConfigError
from pipeline.params import TagParams
from pipeline.render.events import instrument_events
from pipeline.render.fluid import SoundFontBackend


def _clicks(bpm: float, seconds: float, sr: int = 44100) -> np.ndarray:
    """A rendered GM drum loop: kick on beats, hats on off-beats."""
    inst = pretty_midi.Instrument(0, is_drum=True)
    beat = 60 / bpm
    for i in range(int(seconds / beat)):
        inst.notes.append(pretty_midi.Note(110, 36 if i % 2 == 0 else 38, i * beat, i * beat + 0.1))
        inst.notes.append(pretty_midi.Note(80, 42, i * beat + beat / 2, i * beat + beat / 2 + 0.05))
    backend = SoundFontBackend(None, 128, 0, sr)
    return np.concatenate(list(backend.render(instrument_events(inst, 9), seconds, sr, sr * 10))).mean(axis=1)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """deeprhythm's architecture with random weights: the plumbing, not the accuracy."""
    import torch

    from pipeline.analysis.tempo import import_torchaudio

    import_torchaudio()
    from deeprhythm.model.frame_cnn import DeepRhythmModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("dr") / "deeprhythm-0.7.pth"
    torch.save(DeepRhythmModel().state_dict(), path)
    return path


def test_deeprhythm_real_model_runs_on_given_weights(weights):
    est = DeepRhythmTempo(weights)
    audio = _clicks(120, 20)
    first, again = est.estimate(audio, 44100), est.estimate(audio, 44100)
    assert first == again  # deterministic
    assert 30 <= first.bpm <= 286 and 0 < first.confidence <= 1
    short = est.estimate(audio[: 44100 * 3], 44100)  # shorter than one 8 s clip: padded
    assert 30 <= short.bpm <= 286


def test_bad_weights_and_missing_weights_are_clear(tmp_path, weights):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="do not load into its model"):
        DeepRhythmTempo(junk)
    with pytest.raises(ConfigError, match=r"downloads deeprhythm-0\.7\.pth from GitHub on first use"):
        plan_tempo(
            TagParams.model_validate(
                {"tempo": {"backend": "deeprhythm", "deeprhythm_weights": str(tmp_path / "x.pth")}}
            )
        )
    auto = plan_tempo(
        TagParams.model_validate({"tempo": {"backend": "auto", "deeprhythm_weights": str(tmp_path / "x.pth")}})
    )
    assert auto.primary == "essentia" and "fell back to essentia" in auto.note
    with_weights = plan_tempo(
        TagParams.model_validate({"tempo": {"backend": "auto", "deeprhythm_weights": str(weights)}})
    )
    assert with_weights.primary == "deeprhythm" and with_weights.measured == ("deeprhythm", "essentia")
    assert find_deeprhythm_weights(str(weights)) == weights


@pytest.mark.parametrize("bpm", [90, 128])
def test_essentia_finds_the_tempo_of_a_rendered_loop(bpm):
    est = EssentiaTempo("multifeature").estimate(_clicks(bpm, 20), 44100)
    acc1, acc2 = tempo_accuracy(est.bpm, bpm)
    assert acc2 and acc1, est


def test_midi_tempo_is_duration_weighted_and_beat_level_in_compound_meters():
    assert midi_tempo([(0.0, 120.0), (30.0, 90.0)], 40.0) == pytest.approx((30 * 120 + 10 * 90) / 40)
    assert beat_tempo(120.0, 6, 8) == pytest.approx(80.0)
    assert beat_tempo(120.0, 3, 4) == 120.0
    assert tempo_accuracy(104, 100) == (True, True)
    assert tempo_accuracy(200, 100) == (False, True)
    assert tempo_accuracy(33.4, 100) == (False, True)
    assert tempo_accuracy(150, 100) == (False, False)


def test_key_relations():
    c, a_min, g, c_min, f_sharp = (KeyLabel("C", "major"), KeyLabel("A", "minor"), KeyLabel("G", "major"),
                                   KeyLabel("C", "minor"), KeyLabel("F#", "major"))  # fmt: skip
    assert relation(c, c) == "exact"
    assert relation(c, a_min) == relation(a_min, c) == "relative"
    assert relation(c, g) == relation(g, c) == "fifth"
    assert relation(c, c_min) == "parallel"
    assert relation(c, f_sharp) == "other"


def test_song_key_comes_from_the_notes_and_the_signature_is_evidence():
    from pipeline.analysis.key import signature_key
    from pipeline.sample.write import generate

    signatures = 0
    for _, data, truth in generate(1234, 6):
        pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
        k = midi_key(pm)
        assert (k.label, k.source) == (truth["key"]["label"], "midi:notes")
        sig = signature_key(pm)
        assert (sig is not None) == truth["key_signature_in_midi"]
        if sig is not None:
            signatures += 1
            assert sig.label == truth["key"]["label"]
    assert signatures >= 2


def test_a_wrong_key_signature_does_not_win_over_the_notes():
    """A minor song carrying a default C major signature (common in real MIDI) is labelled by its notes."""
    from pipeline.analysis.key import signature_key

    pm = pretty_midi.PrettyMIDI(resolution=480)
    pm.key_signature_changes.append(pretty_midi.KeySignature(0, 0.0))  # C major
    piano, bass = pretty_midi.Instrument(0), pretty_midi.Instrument(33)
    t = 0.0
    for chord in ([57, 60, 64], [62, 65, 69], [64, 68, 71], [57, 60, 64]) * 2:  # Am Dm E Am
        for p in chord:
            piano.notes.append(pretty_midi.Note(80, p, t, t + 1.0))
        bass.notes.append(pretty_midi.Note(80, chord[0] - 24, t, t + 1.0))
        t += 1.0
    pm.instruments += [piano, bass]
    assert signature_key(pm).label == "C major"
    assert midi_key(pm).label == "A minor"
