"""Typed records of the data contract: one per thing, linked by id.

Records are frozen (copy with changes via `model_copy(update=...)`), reject
unknown keys, and check their invariants when built.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
    midi_pan: int | None = Field(
        None, ge=0, le=127, description="pan controller (CC10) in effect at its first note; None: the file sets none"
    )

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


def stem_balance(pan: float, pan_source: str) -> float:
    """The balance render applies to a stem: its pan when placed by family; MIDI pan is the synth's."""
    return pan if pan_source == "family" else 0.0


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
    pan: float = Field(0.0, ge=-1, le=1, description="stereo position: -1 left, 0 centre, +1 right")
    pan_source: Literal["midi", "family"] = Field(
        "midi",
        description="midi: the file's pan controller, played by the synth; family: render.placement's "
        "seeded position, applied to the stem as a constant-power balance",
    )

    @property
    def balance(self) -> float:
        return stem_balance(self.pan, self.pan_source)


class StemMeasure(BaseModel):
    """A rendered stem's levels as its file decodes (float32), measured once where the stem is made,
    so that mix normalises it without an extra read. Peaks are linear (full scale 1.0) and exact:
    the float32 values, which JSON floats hold without rounding."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    loudness_lufs: float | None = Field(description="BS.1770 integrated loudness; None: silent (no gated block)")
    sample_peak: float = Field(ge=0, description="largest |sample|")
    true_peak: float = Field(ge=0, description="largest |sample| of the 4x-oversampled signal (BS.1770-4)")


class RenderedTrack(Record, Sound):
    """A track rendered to a stereo stem (not yet loudness-normalised)."""

    song_id: str
    audio: str
    rule: str = Field(description="the instrument-map rule that matched")
    alternatives: list[str] = Field(description="the rule's patches: timbre alternatives for augmentation")
    duration_s: float = Field(gt=0)
    peak_dbfs: float
    render_gain_db: float = Field(description="gain applied while rendering (patch gain, clipping headroom)")
    measured: StemMeasure
    fallback: str | None = Field(
        default=None, description="the SoundFont lacked the preset the track asked for: what played instead, and why"
    )


class RenderSong(Record):
    artist: str
    title: str
    duration_s: float = Field(gt=0, description="the MIDI song's duration")
    sample_rate: int
    tracks: list[RenderedTrack] = Field(min_length=1)


class Stem(Record, Sound):
    """A loudness-normalised stem in the mix stage (read it with pipeline.audio.stems.stem_samples)."""

    audio: str = Field(description="mix's own file for a limited stem, else the render file")
    source_gain: float | None = Field(
        default=None, gt=0, description="the render file's samples times this (float32, 24-bit) are the stem"
    )
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
    midi: str | None = Field(description="the key of the song's notes")
    midi_source: str | None = Field(description="midi:notes")
    signature: str | None = Field(description="the longest-held key-signature event (evidence, often wrong)")
    signature_relation: Literal["exact", "relative", "fifth", "parallel", "other"] | None = Field(
        description="how the signature relates to the notes' key"
    )
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


Split = Literal["train", "validation", "test"]


RECORDED_PATCH = "recorded"


class ClipInstrument(BaseModel):
    """An instrument that plays in a clip's span, and how it was rendered (so augment can re-render it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    track_id: str
    midi_track: int | None = Field(
        ge=0, description="index of its track in the clip's MIDI span file; null: a recording's instrument"
    )
    name: str = Field(description="General MIDI instrument (or drum kit) name; a recording's family word")
    family: str
    subfamily: str
    program: int | None = Field(ge=0, le=127, description="null: a recording labelled with a family word only")
    is_drum: bool
    patch: str = Field(description=f"the patch that rendered it ('{RECORDED_PATCH}': people played it)")
    balance: float = Field(
        0.0,
        ge=-1,
        le=1,
        description="the constant-power balance render applied (render.placement); MIDI pan "
        "plays from the span's own controller events",
    )
    alternatives: list[str] = Field(description="the instrument-map rule's patches: timbre alternatives")
    notation: NotationInfo | None = Field(description="what its notes do inside the clip's span; null: no notes")


KeyRelation = Literal["exact", "relative", "fifth", "parallel", "other"]


class KeyEvidence(BaseModel):
    """Every estimate of a clip's key, from its own span, and why no key is stated (when none is)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tonal: bool = Field(description="pitched notes sound in the span (false: drums only, or too few notes)")
    notes: str | None = Field(description="key of the span's notes (duration- and bass-weighted profile, context)")
    notes_confidence: float | None = Field(description="profile correlation of the best key minus the runner-up's")
    context: str | None = Field(
        description="key of the music around the span that decided its tonic: the song's key while it fits "
        "the span's notes (clip.labels.song_key_margin), else the key clip.labels.context_s around it"
    )
    signature: str | None = Field(description="key-signature event in effect over the whole span (none, or it changes)")
    audio: str | None = Field(description="essentia's key of the clip's own audio")
    audio_strength: float | None
    song_audio: str | None = Field(description="essentia's key of the whole song's mix (tag stage)")
    agreement: KeyRelation | None = Field(description="how the audio key relates to the notes' key")
    withheld: str | None = Field(description="why the clip states no key; null when it states one")


class TempoEvidence(BaseModel):
    """The tempo of a clip's span: notated (from the MIDI, exact) and felt (the level audio agrees with)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    notated_bpm: float | None = Field(
        gt=0,
        description="quarter-note BPM over the span, duration-weighted (the MIDI's; a recording's: its beat "
        "grid's, or the hand BPM); null: a recording whose beats were not found",
    )
    min_bpm: float | None = Field(gt=0)
    max_bpm: float | None = Field(gt=0)
    steady: bool = Field(description="max/min - 1 within clip.labels.tempo_tolerance (recordings.max_tempo_drift)")
    felt_bpm: float | None = Field(gt=0, description="notated_bpm x felt_factor: the beat a listener taps")
    felt_factor: float = Field(gt=0, description="e.g. 0.5 (half time), 2/3 (dotted quarter in 6/8), 1")
    felt_source: Literal["audio", "meter", "hand"] = Field(
        description="audio estimators agreed on the level, or the meter, or a person's BPM (recordings)"
    )
    audio_bpm: dict[str, float] = Field(description="each audio estimator's tempo of the clip's audio")
    withheld: str | None = Field(description="why the clip states no BPM; null when it states one")


class MeterEvidence(BaseModel):
    """The time signatures of a clip's bars; one is stated only when it holds over the whole clip."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    meters: list[str] = Field(
        description="distinct time signatures of the clip's bars, in order (empty: a recording of unknown meter)"
    )
    withheld: str | None


class Clip(Record):
    """A training clip: a whole number of bars of a song's mix (or one solo stem), cut on bar lines.

    The record is also the clip's JSON sidecar: every field describes the clip's own span.
    """

    song_id: str
    artist: str
    title: str
    kind: Literal["mix", "stem"]
    split: Split
    audio: str = Field(description="44.1 kHz 16-bit stereo WAV")
    sidecar: str = Field(description="JSON of this record beside the WAV (stable-audio-tools audio_dir)")
    midi: str | None = Field(
        description="the per-track MIDI cut to the clip's bars, with the song's tempo map; null: a recording"
    )
    section: int = Field(ge=0, description="index of the song section the clip lies in")
    section_source: Literal["spotify", "midi", "none"]
    bar_start: int = Field(ge=0, description="index of the clip's first bar in the song (a recording cut by time: 0)")
    bars: int | None = Field(ge=1, description="null: a recording cut by time (its beat grid was not reliable)")
    padded_s: float = Field(ge=0, description="silence appended to complete the last bar or a padded tail")
    loopable: bool = Field(description="no note crosses either end, and bars is a power of two")
    seconds_start: float = Field(ge=0, description="where the clip starts in its song")
    seconds_total: float = Field(gt=0, description="the clip's length")
    sample_rate: int
    loudness_lufs: float
    instruments: list[ClipInstrument] = Field(min_length=1)
    key: str | None = Field(description="the stated key, '<tonic> <scale>', e.g. 'F# minor'; null: withheld")
    bpm: float | None = Field(gt=0, description="the stated BPM (clip.labels.bpm_level); null: withheld")
    time_signature: str | None = Field(description="the meter of every bar of the clip; null: it changes")
    genre_tags: list[str] = Field(description="Last.fm tags of the song")
    timbre: list[str] = Field(description="timbre adjectives measured on the clip's own audio")
    timbre_features: dict[str, float]
    fx: list[str] = Field(default_factory=list, description="effect labels (augment adds them; clips are dry)")
    energy: float | None = None
    acousticness: float | None = None
    label_sources: dict[str, str] = Field(description="the evidence each stated label rests on")
    key_evidence: KeyEvidence
    tempo_evidence: TempoEvidence
    meter_evidence: MeterEvidence
    quiet_instruments: list[str] = Field(
        default_factory=list, description="track ids whose notes sound in the span but too quietly to name"
    )

    @model_validator(mode="after")
    def _check(self) -> Clip:
        if not self.id.startswith(self.song_id + "/c"):
            raise ValueError(f"clip id {self.id!r} must be '{self.song_id}/cNNN[-tNN]'")
        if self.kind == "stem" and len(self.instruments) != 1:
            raise ValueError(f"{self.id}: a stem clip holds exactly one instrument")
        return self

    @property
    def scale(self) -> str | None:
        return self.key.split(" ")[1] if self.key else None

    @property
    def tonic(self) -> str | None:
        return self.key.split(" ")[0] if self.key else None

    @property
    def source(self) -> Literal["midi", "recording"]:
        """Rendered from MIDI, or cut from a recording (which has no MIDI)."""
        return "midi" if self.midi is not None else "recording"


def hours_by_source(clips: Sequence[Clip]) -> dict[str, float]:
    """Hours of clips (or variants) rendered from MIDI and cut from recordings."""
    return {s: round(sum(c.seconds_total for c in clips if c.source == s) / 3600, 4) for s in ("midi", "recording")}


PromptStyle = Literal["natural", "tags", "subset"]


class Prompt(Record):
    """The text prompt of one clip (id = the clip's id), and how it was made."""

    prompt: str = Field(min_length=1)
    style: PromptStyle
    backend: Literal["template", "vllm", "openai"] = Field(description="what wrote the text that was kept")
    requested_backend: Literal["template", "vllm", "openai"]
    model: str | None
    attempts: int = Field(ge=0, description="LLM generations tried (0 for template)")
    fallback: bool = Field(description="every LLM attempt failed validation; a template prompt replaced it")
    rejected: list[str] = Field(default_factory=list, description="why each failed attempt was rejected")


AugmentAxis = Literal["key", "bpm", "fx", "timbre"]


class Transform(BaseModel):
    """One recorded augmentation step (lhotse style): what was done, with which arguments and seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    axis: AugmentAxis
    name: str = Field(description="e.g. transpose_midi, pitch_shift_audio, tempo_midi, time_stretch_audio, fx_chain")
    kwargs: dict[str, object] = Field(description="JSON values: the arguments that reproduce the step")
    seed: int = Field(ge=0)


class Variant(Clip):
    """A training item of the augmented dataset: a clip, or a variant of it, with its own truthful labels.

    Every Clip field describes the variant's own audio (key, bpm, seconds, fx, timbre, patches);
    `id` is `<source clip id>/<suffix>` (`orig` for the unchanged clip). The record is also the
    item's JSON sidecar in the dataset.
    """

    source_clip: str
    suffix: str = Field(pattern=r"^[A-Za-z0-9+\-_]+$", description="what changed, e.g. k+2_bpm120_fx-reverb-high")
    method: Literal["identity", "midi", "audio"] = Field(description="re-rendered from MIDI, processed audio, or as is")
    transforms: list[Transform]
    phrase: str = Field(description="hash of the notes the clip plays: variants per phrase are capped")
    cache_key: str | None = Field(description="content address of the variant's audio in the augment cache")
    prompt: str | None = Field(default=None, min_length=1)
    prompt_style: PromptStyle | None = None

    @model_validator(mode="after")
    def _variant_id(self) -> Variant:
        if self.id != f"{self.source_clip}/{self.suffix}":
            raise ValueError(f"variant id {self.id!r} must be '{self.source_clip}/{self.suffix}'")
        if (self.method == "identity") != (not self.transforms):
            raise ValueError(f"{self.id}: only the identity entry has no transforms")
        return self


# --- recordings (pipeline/recordings) ---------------------------------------------------------------

LABEL_FIELDS: tuple[str, ...] = (
    "artist", "title", "instruments", "genre", "mood", "key", "bpm", "meter", "description", "licence", "attribution",
)  # fmt: skip
ESTIMABLE_FIELDS: tuple[str, ...] = ("key", "bpm", "genre", "mood")
# Drafted by the audio tagger for a person to confirm; never used while still marked `estimated`.
TAGGED_FIELDS: tuple[str, ...] = ("genre", "mood")


class RecordedInstrument(BaseModel):
    """An instrument a person named for a recording, mapped to the GM vocabulary prompts use."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    word: str = Field(description="as labelled")
    name: str | None = Field(description="the GM instrument it names; None: a family or a general word")
    family: str = Field(description="GM family, or 'Drums'")


class RecordedStem(BaseModel):
    """One part of a recording, from its stems folder (`<file>.stems/<instrument>.<ext>`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    instrument: RecordedInstrument = Field(description="the instrument its file name says")
    source: str = Field(description="the stem file, relative to recordings.path")
    audio: str = Field(description="44.1 kHz stereo 24-bit FLAC, as long as the recording's")
    loudness_lufs: float
    gain_db: float = Field(description="gain applied on conversion (headroom for a file that would clip)")


class RecordingEstimates(BaseModel):
    """What the estimators measured, kept whether or not it became a label (for audit and drafts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    analysed_s: float = Field(ge=0, description="audio the tempo and key estimators saw")
    bpm: float | None
    bpm_confidence: float | None = Field(description="essentia RhythmExtractor2013 confidence (0-5.32)")
    beats: int = Field(ge=0, description="beats the tracker found")
    key: str | None
    key_strength: float | None


class RecordingSong(Record):
    """A recording as a song: its audio at 44.1 kHz stereo, and its labels with their provenance."""

    artist: str
    title: str
    source: str = Field(description="the audio file, relative to recordings.path")
    source_format: str
    source_sample_rate: int = Field(gt=0)
    source_channels: int = Field(ge=1)
    audio: str = Field(description="44.1 kHz stereo 24-bit FLAC")
    sample_rate: int
    duration_s: float = Field(gt=0)
    loudness_lufs: float
    gain_db: float = Field(description="gain applied on conversion (headroom for a file that would clip)")
    instruments: list[RecordedInstrument]
    genre_tags: list[str]
    mood_tags: list[str]
    key: str | None
    bpm: float | None = Field(gt=0)
    meter: str | None
    description: str | None
    licence: str | None
    attribution: str | None
    hand: list[str] = Field(description="fields a person labelled: they win over every estimate")
    estimated: list[str] = Field(description="fields filled by an estimate nobody has confirmed")
    withheld: dict[str, str] = Field(description="estimable fields left empty, and why (an uncertain estimate)")
    estimates: RecordingEstimates
    stems: list[RecordedStem] = Field(
        default_factory=list, description="its parts, when the folder provides them: solo clips, and which part plays"
    )
