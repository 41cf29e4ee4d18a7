"""Real clips for the augment tests: a MIDI span (tests/midi_factory.py), its audio rendered and
mixed with the pipeline's own render and mix functions, and the Clip record the clip stage would write."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pretty_midi
import soundfile as sf

from pipeline.analysis.notation import describe_notation
from pipeline.analysis.tag import timbre_adjectives, timbre_values
from pipeline.analysis.timbre import TimbreThresholds
from pipeline.augment.make import AugmentConfig
from pipeline.augment.rerender import Part, finish, mix_parts, render_parts
from pipeline.midi import gm
from pipeline.params import load_params
from pipeline.records import Clip, ClipInstrument, NotationInfo, Prompt
from tests.clip_factory import evidence
from tests.midi_factory import TrackSpec, midi_bytes

SONG = "aug-band__aug-song__a1b2c3"
PPQ = 480
PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")  # the real instrument map


def progression(bars: int = 8, root: int = 60) -> list[TrackSpec]:
    """I-IV-V-I block chords (piano) over a root-note bassline (finger bass): a clear major key."""
    bar = 4 * PPQ
    piano, bass = TrackSpec("Piano", program=0, channel=0), TrackSpec("Bass", program=33, channel=1)
    degrees = [(0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7)]
    for b in range(bars):
        chord = degrees[b % 4]
        for q in range(4):
            for p in chord:
                piano.notes.append((root + p, b * bar + q * PPQ, b * bar + q * PPQ + PPQ - 40, 80))
        for q in range(2):
            bass.notes.append((root - 24 + chord[0], b * bar + q * 2 * PPQ, b * bar + q * 2 * PPQ + 2 * PPQ - 60, 90))
    return [piano, bass]


def clicks(bars: int = 4) -> list[TrackSpec]:
    """A woodblock on every beat: sharp onsets to time."""
    spec = TrackSpec("Click", program=115, channel=0)
    for beat in range(bars * 4):
        spec.notes.append((76, beat * PPQ, beat * PPQ + PPQ // 8, 110))
    return [spec]


def _alternatives(program: int, is_drum: bool, name: str) -> list[str]:
    for rule in PARAMS.render.rules:
        if rule.match.matches(program, is_drum, name):
            return list(rule.patches)
    raise AssertionError("no rule")


def make_clip(
    root: Path,
    tracks: list[TrackSpec],
    *,
    n: int = 0,
    bpm: float = 120.0,
    bars: int = 8,
    key: str | None = "C major",
    mido_key: str | None = "C",
    split: str = "train",
    stem: int | None = None,
    song: str = SONG,
    midi_name: str | None = None,
    second_half_bpm: float | None = None,
) -> Clip:
    """Write the clip's MIDI span and audio under `root` and return its record.

    `stem`: the clip is the solo stem of that track (sharing the span file, as the clip stage does).
    `second_half_bpm`: the tempo changes to this half-way through the bars; the clip then states no
    BPM (as the clip stage withholds it) and its tempo evidence holds the span's weighted BPM.
    """
    midi_rel = f"data/clip/midi/{song}/{midi_name or f'c{n:03d}'}.mid"
    midi_path = root / midi_rel
    if not midi_path.exists():
        midi_path.parent.mkdir(parents=True, exist_ok=True)
        tempos = [(0, round(60e6 / bpm))]
        if second_half_bpm is not None:
            tempos.append((bars // 2 * 4 * PPQ, round(60e6 / second_half_bpm)))
        midi_path.write_bytes(midi_bytes(tracks, tempos=tempos, ppq=PPQ, key=mido_key))
    pm = pretty_midi.PrettyMIDI(str(midi_path))
    instruments = []
    for i, spec in enumerate(tracks):
        if stem is not None and i != stem:
            continue
        is_drum = spec.channel == 9
        fields = dataclasses.asdict(describe_notation(pm.instruments[i], pm))
        fields["pitch_register"] = fields.pop("register")
        instruments.append(
            ClipInstrument(
                track_id=f"{song}/t{i:02d}", midi_track=i, name=gm.instrument_name(spec.program, is_drum),
                family=gm.family(spec.program, is_drum), subfamily=gm.subfamily(spec.program, is_drum),
                program=spec.program, is_drum=is_drum, patch="gm-kit" if is_drum else "gm",
                alternatives=_alternatives(spec.program, is_drum, spec.name), notation=NotationInfo(**fields),
            )
        )  # fmt: skip
    seconds = pm.tick_to_time(bars * 4 * PPQ)
    tempo = evidence(key, bpm, "4/4")
    if second_half_bpm is not None:
        slow, fast = sorted((bpm, second_half_bpm))
        tempo["tempo_evidence"] = tempo["tempo_evidence"].model_copy(update={
            "notated_bpm": round(float(bars * 4 * 60.0 / seconds), 3), "min_bpm": slow, "max_bpm": fast,
            "felt_bpm": round(float(bars * 4 * 60.0 / seconds), 3), "steady": False,
            "withheld": f"tempo varies {slow:g}-{fast:g} BPM inside the clip",
        })  # fmt: skip
    sr = PARAMS.render.sample_rate
    stems = render_parts(pm, [Part(ci, ci.patch) for ci in instruments], PARAMS.render, round(seconds * sr))
    x = stems[0] if stem is not None else mix_parts(stems, sr, PARAMS.mix)
    y, loudness = finish(x, sr, -16.0, PARAMS.mix)
    cid = f"{song}/c{n:03d}" + (f"-t{stem:02d}" if stem is not None else "")
    audio_rel = f"data/clip/audio/{cid}.wav"
    (root / audio_rel).parent.mkdir(parents=True, exist_ok=True)
    sf.write(root / audio_rel, y, sr, subtype="PCM_16")
    features = timbre_values(y, sr)
    return Clip(
        id=cid, song_id=song, artist="Aug Band", title="Aug Song", kind="stem" if stem is not None else "mix",
        split=split, audio=audio_rel, sidecar=audio_rel.replace(".wav", ".json"), midi=midi_rel, section=0,
        section_source="midi", bar_start=n * bars, bars=bars, padded_s=0.0, loopable=True,
        seconds_start=n * seconds, seconds_total=round(seconds, 6), sample_rate=sr, loudness_lufs=round(loudness, 3),
        instruments=instruments, key=key, bpm=None if second_half_bpm is not None else bpm, time_signature="4/4",
        genre_tags=["pop"],
        timbre=timbre_adjectives(features, TimbreThresholds(), False), timbre_features=features, energy=0.5,
        acousticness=0.5, label_sources={"key": "notes+audio" if key else "none",
                                         "bpm": "none" if second_half_bpm is not None else "midi"},
        **tempo,
    )  # fmt: skip


def config(root: Path, cache: Path | None = None, **augment: object) -> AugmentConfig:
    """The run-wide settings with default params (augment fields overridden)."""
    p = PARAMS.augment.model_copy(update=augment)
    return AugmentConfig(root.resolve(), root.resolve() / "data/augment/dataset", cache or root / "cache", p,
                         PARAMS.render, PARAMS.mix, TimbreThresholds(), PARAMS.run.seed,
                         PARAMS.clip.silence_lufs)  # fmt: skip


def prompt_for(clip: Clip) -> Prompt:
    tempo = f"{clip.bpm:g} BPM" if clip.bpm is not None else "a varying tempo"
    return Prompt(id=clip.id, prompt=f"{clip.key or 'atonal'} clip at {tempo}", style="tags",
                  backend="template", requested_backend="template", model=None, attempts=0, fallback=False)  # fmt: skip
