"""Typed records of the data contract: one per thing, linked by id.

Records are frozen (copy with changes via `model_copy(update=...)`), reject
unknown keys, and check their invariants when built.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1
SONG_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*__[a-z0-9][a-z0-9-]*__[0-9a-f]{6}$")

Source = Literal["sample", "lakh", "music21", "dir"]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    id: str = Field(min_length=1)


class Failure(Record):
    """An item a stage skipped, and why (the id comes first in every message)."""

    stage: str
    reason: str
    origin: str | None = None


class Song(Record):
    """A deduplicated source MIDI file, copied into the ingest stage's folder."""

    artist: str
    title: str
    source: Source
    origin: str = Field(description="where it came from: path under the input folder or corpus id")
    midi: str = Field(description="relative path of the copied MIDI file")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    n_instruments: int = Field(ge=0)
    n_notes: int = Field(ge=0)
    duration_s: float = Field(ge=0)
    truth: str | None = Field(default=None, description="ground-truth JSON (embedded sample only)")

    @model_validator(mode="after")
    def _id_shape(self) -> Song:
        if not SONG_ID_RE.match(self.id):
            raise ValueError(f"song id {self.id!r} is not artist__title__hash6")
        return self


class Duplicate(Record):
    """A source file dropped by dedupe; `id` is its origin."""

    kept: str = Field(description="id of the song that was kept instead")
    kept_origin: str
    reason: Literal["lakh-version", "same-notes"]
    detail: str


class TempoChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    time_s: float = Field(ge=0)
    tempo_bpm: float = Field(gt=0, description="quarter notes per minute, as MIDI states it")


class TimeSignature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    time_s: float = Field(ge=0)
    numerator: int = Field(ge=1)
    denominator: int = Field(ge=1)


class KeySignature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    time_s: float = Field(ge=0)
    tonic: str
    scale: Literal["major", "minor"]


class Track(Record):
    """One instrument of a song, written to its own MIDI file with the song's tempo map."""

    song_id: str
    midi: str
    source_index: int = Field(ge=0, description="index among the source file's instruments")
    track_name: str
    program: int = Field(ge=0, le=127)
    is_drum: bool
    name: str = Field(description="General MIDI instrument (or drum kit) name")
    family: str = Field(description="General MIDI family, or 'Drums'")
    subfamily: str
    n_notes: int = Field(ge=1)
    pitch_min: int = Field(ge=0, le=127)
    pitch_max: int = Field(ge=0, le=127)
    max_polyphony: int = Field(ge=1)
    polyphonic_fraction: float = Field(ge=0, le=1, description="share of sounding time with 2+ notes")
    polyphony: Literal["monophonic", "polyphonic"]
    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)
    n_pitch_bends: int = Field(ge=0)
    n_control_changes: int = Field(ge=0)

    @model_validator(mode="after")
    def _check(self) -> Track:
        if not self.id.startswith(self.song_id + "/t"):
            raise ValueError(f"track id {self.id!r} must be '{self.song_id}/tNN'")
        if self.pitch_min > self.pitch_max:
            raise ValueError(f"{self.id}: pitch_min {self.pitch_min} > pitch_max {self.pitch_max}")
        if self.end_s < self.start_s:
            raise ValueError(f"{self.id}: end_s {self.end_s} < start_s {self.start_s}")
        return self


class SplitSong(Record):
    """A song after splitting: its timing grid and its per-instrument tracks."""

    artist: str
    title: str
    source_midi: str
    duration_s: float = Field(gt=0)
    resolution: int = Field(gt=0, description="MIDI ticks per quarter note")
    tempo_map: list[TempoChange] = Field(min_length=1)
    time_signatures: list[TimeSignature]
    key_signatures: list[KeySignature]
    tracks: list[Track] = Field(min_length=1)
    dropped_empty_tracks: int = Field(ge=0)
    dropped_zero_length_notes: int = Field(ge=0)

    @model_validator(mode="after")
    def _check(self) -> SplitSong:
        for t in self.tracks:
            if t.song_id != self.id:
                raise ValueError(f"{self.id}: track {t.id} belongs to {t.song_id}")
        return self


class Sound(BaseModel):
    """Which instrument made a stem, and how: shared by a rendered track and its normalised stem."""

    track_name: str
    program: int = Field(ge=0, le=127)
    is_drum: bool
    name: str
    family: str
    subfamily: str
    polyphony: Literal["monophonic", "polyphonic"]
    backend: Literal["soundfont", "vst3"]
    patch: str = Field(description="the patch that rendered it")
    patch_detail: str = Field(description="what produced the sound: SoundFont bank/preset or plugin")


class RenderedTrack(Record, Sound):
    """A track rendered to a stereo stem (not yet loudness-normalised)."""

    song_id: str
    audio: str
    rule: str = Field(description="the instrument-map rule that matched")
    alternatives: list[str] = Field(description="the rule's patches: timbre alternatives for augmentation")
    duration_s: float = Field(gt=0)
    peak_dbfs: float
    render_gain_db: float = Field(description="gain applied while rendering (patch gain, clipping headroom)")


class RenderSong(Record):
    artist: str
    title: str
    duration_s: float = Field(gt=0, description="the MIDI song's duration")
    sample_rate: int
    tracks: list[RenderedTrack] = Field(min_length=1)


class Stem(Record, Sound):
    """A loudness-normalised stem in the mix stage."""

    audio: str
    loudness_before_lufs: float
    loudness_after_lufs: float
    gain_db: float
    true_peak_dbtp: float
    limited: bool = Field(description="a limiter kept the stem under the true-peak ceiling")


class MixSong(Record):
    """A song's normalised stems (the solo, monophonic-instrument view) and its mix (the polyphonic view)."""

    artist: str
    title: str
    sample_rate: int
    duration_s: float = Field(gt=0)
    mode: Literal["sum", "average"]
    mix: str
    stems: list[Stem] = Field(min_length=1)
    silent_stems: list[str] = Field(description="track ids left out of the mix as silent")
    shared_gain_db: float = Field(description="one gain applied to the summed stems (Slakh-style gain staging)")
    mix_gain_db: float = Field(description="gain that brought the mix to its loudness target")
    mix_lufs: float
    mix_true_peak_dbtp: float
    mix_limited: bool


class NotationInfo(BaseModel):
    """What the notes do (from the MIDI), for a whole track or a time span."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    role: str | None
    notes_per_second: float
    notes_per_beat: float
    speed: str | None
    density: str | None
    contour: str | None
    pitch_register: str | None = Field(description="low, mid or high (pydantic reserves `register`)")
    pitch_range_semitones: int
    polyphony: int


class TimbreInfo(BaseModel):
    """Measured audio features and the adjectives they make true."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    features: dict[str, float]
    tags: list[str]


class StemTags(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    timbre: TimbreInfo
    notation: NotationInfo


class TempoTags(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    midi_bpm: float = Field(description="quarter-note BPM, duration-weighted over the tempo map")
    midi_beat_bpm: float = Field(description="the felt beat's BPM (dotted quarter in compound meters)")
    audio_bpm: dict[str, float] = Field(description="estimate per backend (beat level)")
    acc1: dict[str, bool]
    acc2: dict[str, bool]
    label_bpm: float
    label_source: Literal["midi", "audio"]


class KeyTags(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    midi: str | None
    midi_source: str | None = Field(description="key_signature or pitch_profile")
    audio: str
    audio_strength: float | None
    relation: Literal["exact", "relative", "fifth", "parallel", "other"] | None
    label: str
    label_source: Literal["midi", "audio"]


class TagSong(Record):
    """Labels a song's prompts will state, with how audio and MIDI agree."""

    artist: str
    title: str
    duration_s: float
    time_signature: str
    tempo: TempoTags
    key: KeyTags
    tempo_backend: str = Field(description="the backend whose estimate labels (audio policy) and is reported")
    agrees: bool = Field(description="audio and MIDI agree on tempo (Acc1) and key (exact)")
    flagged: bool = Field(description="label_policy agree and they disagree")
    timbre: TimbreInfo
    stems: list[StemTags]


Provenance = Literal["midi", "audio", "spotify", "lastfm", "none"]


class MetadataSong(Record):
    """The reference metadata shape, every field with its provenance."""

    Song: str
    Artist: str
    Tags: list[str]
    Instruments: list[str]
    duration_ms: int
    acousticness: float | None
    energy: float | None
    instrumentalness: float | None
    danceability: float | None
    valence: float | None
    key: str
    mode: Literal["major", "minor"]
    tempo: float
    sections: list[dict[str, float]] | None
    provenance: dict[str, Provenance]
    spotify_track_id: str | None
    spotify_similarity: float | None
    lastfm_tag_weights: dict[str, int]
