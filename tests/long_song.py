"""A long multi-track song (pretty_midi), for the bounded-memory tests and `python tests/long_song.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import pretty_midi

# C major: I-vi-IV-V, one chord a bar, in 4/4 at 120 BPM (2 s a bar).
_CHORDS = ([60, 64, 67], [57, 60, 64], [53, 57, 60], [55, 59, 62])
_BASS = (36, 33, 29, 31)
_LEAD = (72, 74, 76, 77, 79, 77, 76, 74)


def long_song(minutes: float, bpm: float = 120.0) -> pretty_midi.PrettyMIDI:
    """Piano chords, finger bass, a lead line and a drum kit, `minutes` long; loud and quiet sections
    alternate every 16 bars so the limiter and the gates have work to do."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    pm.key_signature_changes.append(pretty_midi.KeySignature(0, 0.0))
    beat = 60.0 / bpm
    bars = int(minutes * 60 / (4 * beat))
    piano = pretty_midi.Instrument(program=0, name="piano")
    bass = pretty_midi.Instrument(program=33, name="bass")
    lead = pretty_midi.Instrument(program=81, name="lead")
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    for bar in range(bars):
        t0 = bar * 4 * beat
        loud = (bar // 16) % 2 == 0
        vel = 100 if loud else 55
        for pitch in _CHORDS[bar % 4]:
            piano.notes.append(pretty_midi.Note(vel, pitch, t0, t0 + 4 * beat - 0.05))
        for k in range(4):
            bass.notes.append(pretty_midi.Note(vel, _BASS[bar % 4], t0 + k * beat, t0 + (k + 0.9) * beat))
            hit = t0 + k * beat
            kick = k % 2 == 0
            drums.notes.append(pretty_midi.Note(vel + 20 if kick else vel, 36 if kick else 38, hit, hit + 0.1))
            for h in (0.0, 0.5):
                drums.notes.append(pretty_midi.Note(vel - 20, 42, hit + h * beat, hit + h * beat + 0.05))
        if loud:
            for k in range(8):
                pitch = _LEAD[(bar + k) % len(_LEAD)]
                lead.notes.append(pretty_midi.Note(90, pitch, t0 + k * beat / 2, t0 + (k + 0.8) * beat / 2))
    pm.instruments.extend([piano, bass, lead, drums])
    return pm


def write_long_song(path: Path, minutes: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    long_song(minutes).write(str(path))
    return path


if __name__ == "__main__":
    write_long_song(Path(sys.argv[1]), float(sys.argv[2]))
