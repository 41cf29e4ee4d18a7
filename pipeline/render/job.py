"""Render one split track: pick its patch, build the backend, write the stem."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pretty_midi

from pipeline.errors import ItemError
from pipeline.midi.load import parse_midi
from pipeline.params import PatchSpec, RenderParams
from pipeline.records import RenderedTrack, Track
from pipeline.render.events import Backend, instrument_events
from pipeline.render.fluid import SoundFontBackend
from pipeline.render.patches import choose_patch, describe_patch, soundfont_file, soundfont_preset
from pipeline.render.placement import CENTRE, Placement, balanced
from pipeline.render.track import RenderSettings, render_with_headroom

DRUM_CHANNEL = 9


@dataclass(frozen=True)
class RenderJob:
    track: Track
    root: Path
    out_dir: Path
    params: RenderParams
    seed: int
    unreproducible: frozenset[str] = frozenset()  # VST3 patches whose output varies from run to run
    placement: Placement = CENTRE  # where the track sits (pipeline/render/placement.py)


def settings_of(params: RenderParams) -> RenderSettings:
    return RenderSettings(params.sample_rate, params.tail_s, params.trim_db, params.chunk_s)


def make_backend(params: RenderParams, patch: str, rule: str, program: int, is_drum: bool) -> Backend:
    spec = params.patches[patch]
    if spec.backend == "vst3":
        from pipeline.render.vst3 import Vst3Backend, cached_vst3

        return Vst3Backend(cached_vst3(spec, patch, rule), params.vst3_block_frames)
    bank, preset = soundfont_preset(spec, program, is_drum)
    sf2 = soundfont_file(spec, params)
    # A preset the track asks for (its MIDI program or kit) may be missing from the SoundFont: play the
    # nearest one instead. A preset the patch names is the user's choice: missing, it fails the track.
    fallback_for = is_drum if spec.preset is None else None
    return SoundFontBackend(sf2, bank, preset, params.sample_rate, params.soundfont_reverb, params.soundfont_chorus,
                            fallback_for)  # fmt: skip


def load_instrument(path: Path) -> pretty_midi.Instrument:
    pm = parse_midi(path.read_bytes()).pm
    notes = [i for i in pm.instruments if i.notes]
    if len(notes) != 1:
        raise ItemError(f"{path.name}: expected one instrument, found {len(notes)}")
    return notes[0]


def render_track(job: RenderJob) -> RenderedTrack:
    """Render `job.track` to `<out_dir>/<song_id>/tNN.flac`."""
    t, params = job.track, job.params
    choice = choose_patch(params, t, job.seed)
    backend = make_backend(params, choice.patch, choice.rule, t.program, t.is_drum)
    inst = load_instrument(job.root / t.midi)
    events = instrument_events(inst, DRUM_CHANNEL if t.is_drum else 0)
    out = job.out_dir / t.song_id / f"{t.id.rsplit('/', 1)[1]}.flac"
    spec = params.patches[choice.patch]
    placement = job.placement
    played = backend if isinstance(backend, SoundFontBackend) else None  # its bank and preset, after any fallback
    audio = render_with_headroom(balanced(backend, placement.balance), events, out, settings_of(params), spec.gain_db)
    if played is not None:
        detail = describe_patch(spec, t.program, t.is_drum, played.bank, played.preset, soundfont=Path(played.sf2).name)
    else:
        detail = describe_patch(spec, t.program, t.is_drum, reproducible=choice.patch not in job.unreproducible)
    return RenderedTrack(
        id=t.id,
        song_id=t.song_id,
        audio=out.relative_to(job.root).as_posix(),
        track_name=t.track_name,
        program=t.program,
        is_drum=t.is_drum,
        name=t.name,
        family=t.family,
        subfamily=t.subfamily,
        polyphony=t.polyphony,
        backend=spec.backend,
        rule=choice.rule,
        patch=choice.patch,
        patch_detail=detail,
        pan=placement.pan,
        pan_source=placement.source,
        fallback=played.fallback if played is not None else None,
        alternatives=list(choice.alternatives),
        duration_s=round(audio.duration_s, 6),
        peak_dbfs=audio.peak_dbfs,
        render_gain_db=audio.gain_db,
        measured=audio.measured,
    )


def check_patches(params: RenderParams, cache_dir: Path | None = None) -> frozenset[str]:
    """Load every patch the map uses once, before any work (a wrong map is a config error), and
    return the VST3 patches whose output differs between two identical renders (not reproducible).

    With `cache_dir`, a VST3 patch that passed before, with the same plugin files, settings files
    and spec, is not loaded again here (a load costs seconds; workers load it anyway)."""
    unreproducible: set[str] = set()
    checked: set[str] = set()
    for rule in params.rules:
        for name in rule.patches:
            if name in checked:
                continue
            checked.add(name)
            spec = params.patches[name]
            if spec.backend == "vst3":
                from pipeline.render.vst3 import checked_reproducible

                if not checked_reproducible(spec, name, rule.name, params, cache_dir):
                    unreproducible.add(name)
            else:
                _check_soundfont_patch(spec, name, rule.name, params)
    return frozenset(unreproducible)


def _check_soundfont_patch(spec: PatchSpec, name: str, rule: str, params: RenderParams) -> None:
    """The SoundFont exists and, for a patch that names its preset, holds it (a track would fail)."""
    from pipeline.errors import ConfigError
    from pipeline.render.fluid import DEFAULT_SF2, SoundFontError, preset_names

    sf2 = soundfont_file(spec, params)
    if sf2 and not Path(sf2).is_file():
        where = "" if spec.sf2 else " (render.soundfont)"
        raise ConfigError(f"patch '{name}' (rule '{rule}'): SoundFont not found: {sf2}{where}")
    if spec.preset is None:
        return  # the track's own program or kit, with fallbacks
    bank = spec.bank if spec.bank is not None else 0
    try:
        names = preset_names(str(sf2 or DEFAULT_SF2))
    except SoundFontError as e:
        raise ConfigError(f"patch '{name}' (rule '{rule}'): {e}") from None
    if (bank, spec.preset) not in names:
        where = Path(sf2 or DEFAULT_SF2).name
        raise ConfigError(f"patch '{name}' (rule '{rule}'): {where} has no preset {spec.preset} in bank {bank}")
