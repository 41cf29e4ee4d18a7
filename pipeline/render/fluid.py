"""SoundFont rendering with FluidSynth (pyfluidsynth), the backend that runs anywhere.

pyfluidsynth only exposes 16-bit output; at FluidSynth's default gain a single
instrument then uses about 10 bits. We bind `fluid_synth_write_float` instead,
so stems keep full resolution. Each track gets a fresh synth, so nothing of one
track (sounding voices, FluidSynth's partly-read 64-frame block) reaches the next
and a track sounds the same whatever a worker rendered before it.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pretty_midi

from pipeline.errors import ItemError
from pipeline.render.events import SynthEvent

DEFAULT_SF2 = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
SYNTH_GAIN = 0.2  # FluidSynth's default; loudness is normalised later


class SoundFontError(ItemError):
    """The SoundFont or the preset asked for cannot be used."""


@functools.cache
def _write_float():
    import fluidsynth

    fn = fluidsynth._fl.fluid_synth_write_float
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                   ctypes.c_void_p, ctypes.c_int, ctypes.c_int]  # fmt: skip
    fn.restype = ctypes.c_int
    return fn


def _new_synth(sf2: str, sample_rate: int, reverb: bool, chorus: bool):
    import fluidsynth

    if not Path(sf2).is_file():
        raise SoundFontError(f"SoundFont not found: {sf2} (render.patches.<name>.sf2)")
    settings = {"synth.reverb.active": int(reverb), "synth.chorus.active": int(chorus), "synth.cpu-cores": 1}
    synth = fluidsynth.Synth(gain=SYNTH_GAIN, samplerate=float(sample_rate), **settings)
    sfid = synth.sfload(sf2)
    if sfid < 0:
        synth.delete()
        raise SoundFontError(f"FluidSynth cannot load SoundFont {sf2}")
    return synth, sfid


@functools.cache
def _loaded(sf2: str):
    """A synth that holds the SoundFont for the rest of the process. FluidSynth shares loaded sample
    data between the synths of a process while one holds it, so each track's fresh synth then loads
    in about 40 ms instead of re-reading the file (160 ms for the 142 MB FluidR3_GM)."""
    return _new_synth(sf2, 44100, False, False)


@functools.cache
def preset_names(sf2: str) -> dict[tuple[int, int], str]:
    """Every (bank, preset) the SoundFont defines, read once per process."""
    synth, sfid = _loaded(sf2)
    names = {}
    for bank in sorted({0, 128, *range(1, 129)}):
        for preset in range(128):
            name = synth.sfpreset_name(sfid, bank, preset)
            if name:
                names[(bank, preset)] = name
    return names


def nearest_preset(sf2: str, bank: int, preset: int, is_drum: bool) -> tuple[int, int, str | None]:
    """(bank, preset, why) the SoundFont can play for a track that asks for `preset` in `bank`: that one,
    or else, so that no track is lost to a preset the SoundFont lacks, a kit's Standard kit (bank 128
    preset 0), and a melodic program's same program in bank 0, then the nearest program of its GM family
    (8 programs: ties go to the lower) in its bank, then in bank 0. `why` says what was missing (None
    when nothing was). Raises SoundFontError if none of these exists."""
    names = preset_names(sf2)
    if (bank, preset) in names:
        return bank, preset, None
    missing = f"{Path(sf2).name} has no preset {preset} in bank {bank}"
    if is_drum:
        if (128, 0) in names:
            return 128, 0, f"{missing}: the Standard kit (bank 128 preset 0, {names[(128, 0)]})"
        raise SoundFontError(f"{missing}, nor a Standard kit (bank 128 preset 0)")
    first = preset // 8 * 8
    family = sorted(range(first, first + 8), key=lambda p: (abs(p - preset), p))
    for b, options in ((0, [preset]), (bank, family), (0, family)):
        for p in options:
            if (b, p) in names:
                return b, p, f"{missing}: the nearest of its family, bank {b} preset {p} ({names[(b, p)]})"
    raise SoundFontError(f"{missing}, nor any preset of its GM family (programs {first}-{first + 7})")


class SoundFontBackend:
    """Renders one track with one preset of a SoundFont."""

    name = "soundfont"

    def __init__(self, sf2: str | Path | None, bank: int, preset: int, sample_rate: int, reverb: bool = False,
                 chorus: bool = False, fallback_for: bool | None = None):  # fmt: skip
        """`fallback_for`: None plays exactly (bank, preset) or raises; True/False (the track is a drum
        track or not) plays `nearest_preset`'s choice and records why in `fallback`."""
        self.sf2 = str(sf2 or DEFAULT_SF2)
        self.fallback: str | None = None
        if fallback_for is not None:
            bank, preset, self.fallback = nearest_preset(self.sf2, bank, preset, fallback_for)
        self.bank, self.preset = bank, preset
        self.sample_rate, self.reverb, self.chorus = sample_rate, reverb, chorus
        if (bank, preset) not in preset_names(self.sf2):
            raise SoundFontError(f"{Path(self.sf2).name} has no preset {preset} in bank {bank}")

    def render(
        self, events: Sequence[SynthEvent], end_s: float, sample_rate: int, chunk_frames: int
    ) -> Iterator[np.ndarray]:
        # A fresh synth per track (~25 ms): FluidSynth's system_reset does not silence
        # sounding voices, and its 64-frame block buffer would carry the previous
        # track's last samples. The SoundFont's samples stay loaded (_loaded holds them).
        synth, sfid = _new_synth(self.sf2, sample_rate, self.reverb, self.chorus)
        try:
            yield from self._render(synth, sfid, events, end_s, sample_rate, chunk_frames)
        finally:
            synth.delete()

    def _render(self, synth, sfid: int, events: Sequence[SynthEvent], end_s: float, sample_rate: int,
                chunk_frames: int) -> Iterator[np.ndarray]:  # fmt: skip
        write = _write_float()
        for ch in sorted({e.channel for e in events}) or [0]:
            synth.program_select(ch, sfid, self.bank, self.preset)
        total = round(end_s * sample_rate)
        buf = np.zeros((chunk_frames, 2), dtype=np.float32)
        filled = position = 0
        pending = iter(sorted(events))
        event = next(pending, None)
        while position < total:
            # Apply every event due at this frame, then render up to the next one.
            while event is not None and round(event.time_s * sample_rate) <= position:
                self._send(synth, event)
                event = next(pending, None)
            stop = total if event is None else min(total, round(event.time_s * sample_rate))
            n = min(stop - position, chunk_frames - filled)
            view = buf[filled:]
            write(synth.synth, n, view.ctypes.data, 0, 2, view.ctypes.data, 1, 2)
            filled += n
            position += n
            if filled == chunk_frames:
                yield buf.copy()
                filled = 0
        if filled:
            yield buf[:filled].copy()

    @staticmethod
    def _send(s, e: SynthEvent) -> None:
        if e.kind == "note_on":
            s.noteon(e.channel, e.a, e.b)
        elif e.kind == "note_off":
            s.noteoff(e.channel, e.a)
        elif e.kind == "control":
            s.cc(e.channel, e.a, e.b)
        elif e.kind == "pitch_bend":
            s.pitch_bend(e.channel, e.a)
        # "program" events are not sent: the patch chose the preset.
