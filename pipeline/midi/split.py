"""Split a song into one MIDI file per instrument track, keeping its timing grid."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pretty_midi

from pipeline.ids import item_rng, track_id
from pipeline.io.atomic import write_bytes
from pipeline.midi import describe, gm
from pipeline.midi.humanize import Humanize, humanize
from pipeline.midi.load import MidiError, MidiLimits, parse_midi
from pipeline.midi.write import instruments_to_midi
from pipeline.records import Song, SplitSong, Track


@dataclass(frozen=True)
class SplitOptions:
    limits: MidiLimits = field(default_factory=MidiLimits)
    min_notes_per_track: int = 1
    legato_overlap_s: float = 0.05
    humanize: Humanize = field(default_factory=Humanize)
    seed: int = 0


def _track_record(
    pm: pretty_midi.PrettyMIDI,
    inst: pretty_midi.Instrument,
    song_id: str,
    index: int,
    source_index: int,
    midi_rel: str,
    opts: SplitOptions,
) -> Track:
    pitches = [n.pitch for n in inst.notes]
    poly = describe.polyphony(inst.notes, opts.legato_overlap_s)
    program = int(inst.program)
    return Track(
        id=track_id(song_id, index),
        song_id=song_id,
        midi=midi_rel,
        source_index=source_index,
        track_name=inst.name.strip(),
        program=program,
        is_drum=bool(inst.is_drum),
        name=gm.instrument_name(program, inst.is_drum),
        family=gm.family(program, inst.is_drum),
        subfamily=gm.subfamily(program, inst.is_drum),
        n_notes=len(inst.notes),
        pitch_min=min(pitches),
        pitch_max=max(pitches),
        max_polyphony=poly.max_notes,
        polyphonic_fraction=poly.polyphonic_fraction,
        polyphony=poly.label,
        start_s=round(min(n.start for n in inst.notes), 6),
        end_s=round(max(n.end for n in inst.notes), 6),
        n_pitch_bends=len(inst.pitch_bends),
        n_control_changes=len(inst.control_changes),
        midi_pan=describe.first_pan(inst),
    )


def split_song(song: Song, root: Path, out_dir: Path, opts: SplitOptions) -> SplitSong:
    """Write `out_dir/<song id>/tNN.mid` per kept instrument and describe them.

    Raises MidiError (with the reason) when the song cannot be used.
    """
    parsed = parse_midi((root / song.midi).read_bytes(), opts.limits)
    pm = parsed.pm
    if not pm.instruments:
        raise MidiError("no instrument tracks (no notes on any channel)")
    kept = [(i, inst) for i, inst in enumerate(pm.instruments) if len(inst.notes) >= opts.min_notes_per_track]
    if not kept:
        raise MidiError(f"no track has at least {opts.min_notes_per_track} note(s)")
    song_dir = out_dir / song.id
    downbeats = pm.get_downbeats() if opts.humanize.active else None
    tracks = []
    for index, (source_index, inst) in enumerate(kept):
        inst.notes.sort(key=lambda n: (n.start, n.pitch, n.end))
        if downbeats is not None:
            humanize(inst, downbeats, opts.humanize, item_rng(opts.seed, "humanize", track_id(song.id, index)))
            inst.notes.sort(key=lambda n: (n.start, n.pitch, n.end))
        path = song_dir / f"t{index:02d}.mid"
        write_bytes(path, instruments_to_midi(pm, [inst]))
        rel = path.relative_to(root).as_posix()
        tracks.append(_track_record(pm, inst, song.id, index, source_index, rel, opts))
    return SplitSong(
        id=song.id,
        artist=song.artist,
        title=song.title,
        source_midi=song.midi,
        duration_s=round(float(pm.get_end_time()), 6),
        resolution=pm.resolution,
        tempo_map=describe.tempo_map(pm),
        time_signatures=describe.time_signatures(pm),
        key_signatures=describe.key_signatures(pm),
        tracks=tracks,
        dropped_empty_tracks=len(pm.instruments) - len(kept),
        dropped_zero_length_notes=parsed.zero_length_notes,
    )


def split_job(args: tuple[Song, Path, Path, SplitOptions]) -> SplitSong:
    """`split_song` over one tuple, for the worker pool."""
    return split_song(*args)
