"""What is known of the SoundFonts Debian packages: licence and where the file comes from.

A dataset made from renders carries its samples' licences, so the render stage records, per
SoundFont it used, the licence this table gives (by file name) or says it is not known.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.render.fluid import DEFAULT_SF2
from pipeline.render.patches import soundfont_file

if TYPE_CHECKING:
    from pipeline.params import RenderParams
    from pipeline.records import RenderedTrack

# file name -> (licence, source)
KNOWN: dict[str, tuple[str, str]] = {
    "TimGM6mb.sf2": ("GPL-2.0", "pretty_midi's bundled copy (Debian timgm6mb-soundfont)"),
    "FluidR3_GM.sf2": ("MIT", "Debian fluid-soundfont-gm"),
    "FluidR3Mono_GM.sf3": ("MIT", "Debian fluidr3mono-gm-soundfont"),
    "MuseScore_General.sf3": ("MIT (parts public domain or CC0)", "Debian musescore-general-soundfont"),
    "MuseScore_General.sf2": ("MIT (parts public domain or CC0)", "Debian musescore-general-soundfont-lossless"),
    "MuseScore_General_Lite.sf3": ("MIT (parts public domain or CC0)", "Debian musescore-general-soundfont-small"),
    "Black_Pearl_4_LV2.sf2": ("CC-BY-SA-3.0", "Debian avldrums.lv2-soundfont"),
    "Red_Zeppelin_4_LV2.sf2": ("CC-BY-SA-3.0", "Debian avldrums.lv2-soundfont"),
}
UNKNOWN = "unknown: not in pipeline/render/soundfonts.py; check the SoundFont's own terms"


def licence_of(sf2: str | Path) -> dict[str, str]:
    """{"licence", "source"} of a SoundFont file, by its name."""
    licence, source = KNOWN.get(Path(sf2).name, (UNKNOWN, str(sf2)))
    return {"licence": licence, "source": source}


def soundfont_licences(params: RenderParams, rendered: list[RenderedTrack]) -> dict[str, dict[str, str | int]]:
    """Per SoundFont the stems used: its licence and source (pipeline/render/soundfonts.py), and how many."""
    played = [params.patches[t.patch] for t in rendered if t.backend == "soundfont"]
    files = [soundfont_file(spec, params) or str(DEFAULT_SF2) for spec in played]
    paths = {Path(f).name: f for f in files}
    used = Counter(Path(f).name for f in files)
    return {name: {**licence_of(paths[name]), "tracks": n} for name, n in sorted(used.items())}
