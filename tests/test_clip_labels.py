"""Key, tempo and meter of a clip's span: from its own evidence, withheld when uncertain."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from pipeline.clips.labels import felt_level, key_labels, meter_labels, span_signature, span_tempi, tempo_labels
from pipeline.midi.keyfind import profile_key, span_profile
from pipeline.params import ClipLabelParams
from pipeline.records import KeySignature, TempoChange

P = ClipLabelParams()
A_MINOR = ([57, 60, 64], [62, 65, 69], [64, 68, 71], [57, 60, 64])  # i iv V i
C_MAJOR = ([60, 64, 67], [65, 69, 72], [67, 71, 74], [60, 64, 67])  # I IV V I


def _song(progressions: list[tuple[list[int], ...]], drums: bool = False) -> list[pretty_midi.Instrument]:
    """Block chords and a root bass, one chord per second; `progressions` follow each other."""
    piano, bass, kit = pretty_midi.Instrument(0), pretty_midi.Instrument(33), pretty_midi.Instrument(0, is_drum=True)
    t = 0.0
    for prog in progressions:
        for chord in prog * 2:
            piano.notes += [pretty_midi.Note(80, p, t, t + 1.0) for p in chord]
            bass.notes.append(pretty_midi.Note(90, chord[0] - 24, t, t + 0.5))
            kit.notes.append(pretty_midi.Note(100, 36, t, t + 0.1))
            t += 1.0
    return [piano, bass, kit] if drums else [piano, bass]


def test_span_tempi_weighted_slowest_fastest():
    tempo_map = [TempoChange(time_s=0.0, tempo_bpm=120.0), TempoChange(time_s=10.0, tempo_bpm=60.0)]
    assert span_tempi(tempo_map, 0.0, 8.0) == (120.0, 120.0, 120.0)
    assert span_tempi(tempo_map, 12.0, 20.0) == (60.0, 60.0, 60.0)
    assert span_tempi(tempo_map, 6.0, 14.0) == (90.0, 60.0, 120.0)


def test_a_tempo_ramp_states_no_bpm_and_a_steady_span_states_the_midi_value():
    ramp = [TempoChange(time_s=float(i), tempo_bpm=120.0 + 29 * i / 8) for i in range(9)]  # 120 -> 149
    bpm, ev = tempo_labels(ramp, 0.0, 9.0, "4/4", {}, P)
    assert bpm is None and not ev.steady and ev.withheld.startswith("tempo varies 120-149")
    assert (ev.min_bpm, ev.max_bpm) == (120.0, 149.0)
    steady = [TempoChange(time_s=0.0, tempo_bpm=127.35)]
    bpm, ev = tempo_labels(steady, 0.0, 9.0, "4/4", {"essentia": 127.0}, P)
    assert bpm == 127.35 and ev.steady and ev.withheld is None  # exact, from the MIDI, not the audio's 127


def test_felt_level_is_what_audio_agrees_with_and_the_meter_otherwise():
    assert felt_level(200.0, "4/4", {"essentia": 100.4}, 0.04) == (0.5, "audio")
    assert felt_level(120.0, "6/8", {}, 0.04) == (pytest.approx(2 / 3), "meter")
    assert felt_level(120.0, "6/8", {"essentia": 80.5}, 0.04) == (pytest.approx(2 / 3), "audio")
    assert felt_level(120.0, "4/4", {"essentia": 97.0}, 0.04) == (1.0, "meter")  # no level agrees
    felt = ClipLabelParams(bpm_level="felt")
    bpm, ev = tempo_labels([TempoChange(time_s=0.0, tempo_bpm=200.0)], 0.0, 9.0, "4/4", {"e": 99.0}, felt)
    assert bpm == 100.0 and ev.notated_bpm == 200.0 and ev.felt_factor == 0.5


def test_meter_is_stated_only_when_every_bar_has_it():
    assert meter_labels(["4/4"] * 8)[0] == "4/4"
    ts, ev = meter_labels(["2/4"] + ["4/4"] * 7)
    assert ts is None and ev.meters == ["2/4", "4/4"] and "2/4 -> 4/4" in ev.withheld


def test_span_signature_is_the_one_in_effect_over_the_whole_span():
    sigs = [KeySignature(time_s=0.0, tonic="G", scale="major"), KeySignature(time_s=10.0, tonic="A", scale="major")]
    assert span_signature(sigs, 0.0, 8.0) == "G major"
    assert span_signature(sigs, 10.0, 18.0) == "A major"
    assert span_signature(sigs, 8.0, 12.0) is None
    assert span_signature([], 0.0, 8.0) is None


def test_notes_key_follows_a_modulation_clip_by_clip():
    up_a_step = tuple([p + 2 for p in chord] for chord in C_MAJOR)  # D major
    insts = _song([C_MAJOR, up_a_step])
    first = profile_key(span_profile(insts, 0.0, 8.0, 1.0), "albrecht")
    second = profile_key(span_profile(insts, 8.0, 16.0, 1.0), "albrecht")
    assert (first.label, second.label) == ("C major", "D major")


def test_a_wrong_signature_alone_never_states_a_key():
    insts = _song([A_MINOR])
    key, ev = key_labels(insts, 0.0, 8.0, "C major", None, 44100, P)  # no audio: signature is the only check
    assert ev.notes == "A minor" and key is None and "evidence disagrees" in ev.withheld
    key, ev = key_labels(insts, 0.0, 8.0, "A minor", None, 44100, P)
    assert key == "A minor" and ev.withheld is None


def test_drums_only_spans_state_no_key():
    kit = pretty_midi.Instrument(0, is_drum=True)
    kit.notes += [pretty_midi.Note(100, 36 + i % 8, i * 0.25, i * 0.25 + 0.1) for i in range(64)]
    key, ev = key_labels([kit], 0.0, 16.0, "C major", np.zeros(44100, dtype=np.float32), 44100, P)
    assert key is None and not ev.tonal and ev.withheld == "not tonal: drums only"


def test_audio_confirms_the_notes_key(tmp_path):
    """The clip's own audio (a FluidSynth rendering) confirms the key of its notes."""
    pm = pretty_midi.PrettyMIDI()
    pm.instruments += _song([A_MINOR, A_MINOR])
    audio = pm.fluidsynth(fs=44100).astype(np.float32)
    key, ev = key_labels(pm.instruments, 0.0, 16.0, None, audio, 44100, P)
    assert (key, ev.audio, ev.agreement) == ("A minor", "A minor", "exact")


def test_first_and_last_bass_pick_between_relative_keys():
    """Natural minor shares every note with its relative major: the song's opening and closing bass decide."""
    from pipeline.midi.keyfind import relative_tonic

    aeolian = ([57, 60, 64], [53, 57, 60], [55, 59, 62], [57, 60, 64])  # Am F G Am: the notes of C major
    insts = _song([aeolian])
    est = profile_key(span_profile(insts), "albrecht")
    assert relative_tonic(est, insts).label == "A minor"
    assert relative_tonic(profile_key(span_profile(_song([C_MAJOR])), "albrecht"), _song([C_MAJOR])).label == "C major"


def test_the_song_key_labels_an_ambiguous_clip_and_a_modulation_leaves_it():
    from pipeline.analysis.key import KeyLabel
    from pipeline.clips.labels import notes_key
    from pipeline.midi.keyfind import foreign_share

    song_key = KeyLabel("A", "minor")
    relative_looking = ([60, 64, 67], [65, 69, 72], [67, 71, 74], [60, 64, 67])  # C F G C inside an A minor song
    insts = _song([A_MINOR, relative_looking, A_MINOR])
    assert notes_key(insts, 8.0, 16.0, P, insts, song_key).key.label == "A minor"  # same notes: the song's key
    up = tuple([p + 2 for p in chord] for chord in A_MINOR)  # B minor: C# and F# are foreign to A minor
    insts = _song([A_MINOR, up, A_MINOR])
    assert foreign_share(span_profile(insts, 8.0, 16.0), 9, "minor") > P.foreign_share
    found = notes_key(insts, 8.0, 16.0, P, insts, song_key)
    assert found.key.label == "B minor" and found.decided_by is None
    short = notes_key(insts, 8.0, 12.0, P, insts, song_key)  # 4 s: too short to leave the song's key
    assert short.key is None and short.decided_by == song_key


# chords of a C major song's excursions toward G (V) and D minor (ii)
F_, G_, C_, D_ = [65, 69, 72], [67, 71, 74], [60, 64, 67], [62, 66, 69]
D7, G7, A7, DM = [62, 66, 69, 72], [67, 71, 74, 77], [57, 61, 64, 67], [62, 65, 69]


def test_retained_share_tells_a_tonicization_from_a_modulation():
    """Both passages lean to G major (F# foreign to C), but only the tonicization keeps C major's F."""
    from pipeline.midi.keyfind import retained_share

    tonicized = span_profile(_song([(F_, D7, G_, G_)]))  # IV V7/V V V: F beside the F#
    modulated = span_profile(_song([(G_, C_, D_, G_)]))  # I IV V I of G: F is gone
    assert profile_key(tonicized, "albrecht").label == profile_key(modulated, "albrecht").label == "G major"
    assert retained_share(tonicized, (0, "major"), (7, "major")) == pytest.approx(0.1, abs=1e-3)
    assert retained_share(modulated, (0, "major"), (7, "major")) == 0.0
    assert retained_share(modulated, (0, "major"), (0, "major")) == 0.0  # the song's own key lacks nothing


def test_a_tonicization_keeps_the_song_key_and_a_modulation_to_the_same_key_leaves_it():
    from pipeline.analysis.key import KeyLabel
    from pipeline.clips.labels import notes_key
    from pipeline.midi.keyfind import foreign_share

    song_key = KeyLabel("C", "major")
    for excursion, expected in (((F_, D7, G_, G_), "C major"), ((G_, C_, D_, G_), "G major")):
        insts = _song([C_MAJOR, excursion, C_MAJOR])
        assert foreign_share(span_profile(insts, 8.0, 16.0), 0, "major") > P.foreign_share  # F# in both
        assert notes_key(insts, 8.0, 16.0, P, insts, song_key).key.label == expected, excursion
    # C7 F G C in a C minor song keeps its Bb, yet the same tonic is mode mixture, not a tonicization
    c_minor = ([60, 63, 67], [65, 68, 72], [67, 71, 74, 77], [60, 63, 67])
    insts = _song([c_minor, ([60, 64, 67, 70], F_, G_, C_), c_minor])
    assert notes_key(insts, 8.0, 16.0, P, insts, KeyLabel("C", "minor")).key.label == "C major"
    off = ClipLabelParams(tonicization_share=1.0)  # the check off: the pitch profile alone leaves for G major
    insts = _song([C_MAJOR, (F_, D7, G_, G_), C_MAJOR])
    assert notes_key(insts, 8.0, 16.0, off, insts, song_key).key.label == "G major"


def test_a_tonicization_the_song_key_fits_poorly_names_no_key():
    """G7 A7 Dm Dm in C major: D minor's leading tone C# beside C major's B; neither key is sure."""
    from pipeline.analysis.key import KeyLabel
    from pipeline.clips.labels import notes_key

    insts = _song([C_MAJOR, (G7, A7, DM, DM), C_MAJOR])
    song_key = KeyLabel("C", "major")
    found = notes_key(insts, 8.0, 16.0, P, insts, song_key)
    assert found.key is None and found.own.label == "D minor" and "tonicize D minor" in found.withheld
    key, ev = key_labels(insts, 8.0, 16.0, "D minor", None, 44100, P, insts, song_key)
    assert key is None and ev.withheld == found.withheld  # even a signature that agrees with D minor
