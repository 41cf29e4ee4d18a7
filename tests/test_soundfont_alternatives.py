"""Timbre alternatives across the installed SoundFonts: every rule's SoundFont patches once per
alternative SoundFont, checked at stage start, spread over by `render.choice: seeded`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.errors import ConfigError
from pipeline.io.manifest import read_manifest
from pipeline.params import RenderParams, parse_params
from pipeline.records import RenderSong
from pipeline.render.job import check_patches
from pipeline.render.patches import sounds_per_family
from tests.conftest import REPO
from tests.midi_factory import TrackSpec, midi_bytes, write

FLUID = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
MUSESCORE = "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"
needs_debian_soundfonts = pytest.mark.skipif(
    not (Path(FLUID).is_file() and Path(MUSESCORE).is_file()),
    reason="fluid-soundfont-gm and musescore-general-soundfont-small (make setup installs them)",
)


def _default_render() -> RenderParams:
    return parse_params(yaml.safe_load((REPO / "params.yaml").read_text())).render


def test_every_rule_gets_each_soundfont_patch_once_per_alternative_soundfont():
    render = _default_render()
    pianos = next(r for r in render.rules if r.name == "pianos")
    assert pianos.patches == [
        "gm", "grand-piano", "electric-piano", "fm-piano",
        "gm@FluidR3_GM", "grand-piano@FluidR3_GM", "electric-piano@FluidR3_GM", "fm-piano@FluidR3_GM",
        "gm@MuseScore_General_Lite", "grand-piano@MuseScore_General_Lite", "electric-piano@MuseScore_General_Lite",
        "fm-piano@MuseScore_General_Lite",
    ]  # fmt: skip
    alt = render.patches["electric-piano@FluidR3_GM"]
    assert (alt.sf2, alt.bank, alt.preset) == (FLUID, None, 4)
    # parsing the expanded params again changes nothing (a dumped params file is stable)
    assert RenderParams.model_validate(render.model_dump()) == render
    # a patch of that name the user defined is theirs; a patch with its own sf2 is not multiplied
    own = {"backend": "soundfont", "sf2": MUSESCORE, "preset": 1}
    custom = RenderParams.model_validate({
        "alternative_soundfonts": [FLUID],
        "patches": {"gm": {}, "gm-kit": {"bank": 128}, "bright": own, "gm@FluidR3_GM": {"preset": 2}},
        "rules": [{"name": "drums", "match": {"drums": True}, "patches": ["gm-kit"]},
                  {"name": "rest", "match": {"drums": False}, "patches": ["gm", "bright"]}],
    })  # fmt: skip
    assert custom.rules[1].patches == ["gm", "bright", "gm@FluidR3_GM"]
    assert custom.patches["gm@FluidR3_GM"].preset == 2 and custom.patches["gm@FluidR3_GM"].sf2 is None


def test_the_default_map_gives_every_family_at_least_8_sounds_but_sound_effects():
    counts = sounds_per_family(_default_render())
    assert {f for f, n in counts.items() if n < 8} == {"Sound Effects"}
    assert counts["Sound Effects"] == 3  # one patch (the track's own program) per SoundFont
    # TimGM6mb alone: 3 or 4 per family
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["render"]
    raw["alternative_soundfonts"] = []
    assert max(sounds_per_family(RenderParams.model_validate(raw)).values()) <= 4


@needs_debian_soundfonts
def test_a_preset_an_alternative_soundfont_lacks_is_a_config_error():
    render = RenderParams.model_validate({
        "alternative_soundfonts": [MUSESCORE],
        "patches": {"gm": {}, "gm-kit": {"bank": 128}, "odd-kit": {"bank": 128, "preset": 127}},
        "rules": [{"name": "drums", "match": {"drums": True}, "patches": ["gm-kit", "odd-kit"]},
                  {"name": "rest", "match": {"drums": False}, "patches": ["gm"]}],
    })  # fmt: skip
    with pytest.raises(ConfigError, match=r"patch 'odd-kit' \(rule 'drums'\): TimGM6mb.sf2 has no preset 127"):
        check_patches(render)


@needs_debian_soundfonts
def test_seeded_choice_spreads_base_renders_over_the_soundfonts(project, tmp_path):
    line = [(60 + i % 7, i * 240, i * 240 + 200, 100) for i in range(8)]
    programs = [0, 24, 33, 48, 56, 65, 73, 81, 88]
    tracks = [TrackSpec(f"Part {k}", program, k, notes=line) for k, program in enumerate(programs)]
    write(tmp_path / "in" / "song.mid", midi_bytes(tracks))
    project.params(ingest={"source": "dir", "path": str(tmp_path / "in")}, render={"choice": "seeded"})
    for stage in ("ingest", "split", "render"):
        assert project.run(stage) == 0
    (song,) = read_manifest(project.out("render").manifest, RenderSong)
    played = {t.patch_detail.split(" bank ")[0] for t in song.tracks}
    assert len(played) >= 2, played  # 9 tracks over 3 SoundFonts
    summary = yaml.safe_load(project.out("render").summary.read_text())
    assert set(summary["soundfonts"]) == {p.removeprefix("soundfont ") for p in played}
    assert all(v["licence"].startswith("MIT") or v["licence"] == "GPL-2.0" for v in summary["soundfonts"].values())
    assert summary["sounds_per_family"]["Piano"] == 9
