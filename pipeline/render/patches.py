"""The instrument map: which patch renders a track, and its timbre alternatives.

Rules are tried in order; the first whose conditions all hold wins. Its first
patch renders the base stems (or a seeded choice); all of its patches are the
track's alternatives for the timbre augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.ids import item_rng

if TYPE_CHECKING:
    from pipeline.params import PatchSpec, RenderParams
    from pipeline.records import Track


@dataclass(frozen=True)
class PatchChoice:
    rule: str
    patch: str
    alternatives: tuple[str, ...]


def choose_patch(params: RenderParams, track: Track, seed: int) -> PatchChoice:
    for rule in params.rules:
        if rule.match.matches(track.program, track.is_drum, track.track_name):
            if params.choice == "seeded" and len(rule.patches) > 1:
                pick = int(item_rng(seed, "render", track.id).integers(len(rule.patches)))
            else:
                pick = 0
            return PatchChoice(rule.name, rule.patches[pick], tuple(rule.patches))
    raise ValueError(f"{track.id}: no render rule matches program {track.program} (is_drum={track.is_drum})")


def soundfont_preset(spec: PatchSpec, program: int, is_drum: bool) -> tuple[int, int]:
    """(bank, preset) a SoundFont patch asks for on a track: its own, else the track's kit (bank 128)
    or program (bank 0)."""
    bank = spec.bank if spec.bank is not None else (128 if is_drum else 0)
    preset = spec.preset if spec.preset is not None else program
    return bank, preset


def soundfont_file(spec: PatchSpec, params: RenderParams) -> str | None:
    """The SoundFont a soundfont patch plays: its own `sf2`, else render.soundfont; None: the bundled
    TimGM6mb."""
    return spec.sf2 or params.soundfont


def describe_patch(
    spec: PatchSpec,
    program: int,
    is_drum: bool,
    bank: int | None = None,
    preset: int | None = None,
    reproducible: bool = True,
    soundfont: str | None = None,
) -> str:
    """A readable, recordable description of what actually produced the sound (`bank` and `preset`:
    what the SoundFont backend played, when it fell back from what the track asked for;
    `reproducible`: False for a plugin whose output differs between two identical renders;
    `soundfont`: the file name of the SoundFont that played)."""
    if spec.backend == "vst3":
        name = f" ({spec.plugin_name})" if spec.plugin_name else ""
        extra = f" preset {spec.preset_file}" if spec.preset_file else ""
        varies = "" if reproducible else "; not reproducible: the plugin's output differs from run to run"
        return f"vst3 {spec.plugin}{name}{extra}{varies}"
    asked = soundfont_preset(spec, program, is_drum)
    bank, preset = asked[0] if bank is None else bank, asked[1] if preset is None else preset
    return f"soundfont {soundfont or spec.sf2 or 'TimGM6mb.sf2'} bank {bank} preset {preset}"


def sounds_per_family(params: RenderParams) -> dict[str, int]:
    """Per GM family, the fewest distinct sounds a track of it can be rendered with (the base patch and its
    timbre alternatives, over the family's programs or kits; a patch playing the track's own program
    counts once with a named preset of that program). Rules by track name are left out."""
    from pipeline.midi.gm import GM_DRUM_KITS, GM_FAMILIES, gm_family

    out: dict[str, int] = {}
    for family in GM_FAMILIES:
        drums = family == "Drums"
        programs = GM_DRUM_KITS if drums else [p for p in range(128) if gm_family(p, False) == family]
        counts = []
        for program in programs:
            rule = next((r for r in params.rules if r.match.matches(program, drums, None)), None)
            if rule is None:
                continue
            sounds = {
                describe_patch(params.patches[n], program, drums, soundfont=soundfont_file(params.patches[n], params))
                for n in rule.patches
            }
            counts.append(len(sounds))
        if counts:
            out[family] = min(counts)
    return out
