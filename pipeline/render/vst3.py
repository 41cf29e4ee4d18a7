"""Render tracks through a VST3 instrument hosted by pedalboard.

The plugin is loaded once per worker process and reused for every track, reset
between tracks. Tracks render in chunks so memory stays bounded for long songs;
the plugin keeps its state from one chunk to the next.

Timing follows pedalboard's C++ side exactly: it turns a message time into a
sample as trunc(float32(time) * sample_rate) and an output length as
trunc(float32(duration) * sample_rate). An event meant for sample n is therefore
sent at (n + 0.5) / sample_rate, and a call for n frames asks for (n + 0.5) /
sample_rate seconds, so truncation lands on n (a plain t - chunk start can land
one sample early, and a plain n / sample_rate can return n - 1 frames).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pedalboard

from pipeline.parallel import ItemError
from pipeline.params import ConfigError, PatchSpec
from pipeline.render.events import SynthEvent

# One plugin call covers at most this many frames: float32 time arithmetic in
# pedalboard stays well within half a sample up to here (2**20 * 2**-23 = 1/8).
MAX_CALL_FRAMES = 2**20
# A constant block size: pedalboard re-prepares (and may reset) a plugin whose block size grows.
BUFFER_SIZE = 8192
# Several messages at one sample get distinct times a millionth of a sample apart:
# pedalboard rejects a call where over 100 messages share one timestamp.
_SAME_SAMPLE_STEP = 1e-6
_SAME_SAMPLE_MAX = 0.25
_HINT = (
    "install a VST3 instrument (e.g. Surge XT, Vital, Dexed or sfizz) and point "
    "render.patches.{patch}.plugin at its .vst3"
)
_MAX_LISTED = 10

Loader = Callable[..., Any]


class Vst3Error(ConfigError):
    """A VST3 patch is configured wrongly; the message names the patch and the map rule."""


def _where(patch: str, rule: str | None) -> str:
    return f"patch '{patch}'" + (f" (rule '{rule}')" if rule else "")


def _plugin_name(plugin: Any, fallback: str = "plugin") -> str:
    return str(getattr(plugin, "name", None) or fallback)


def load_vst3(spec: PatchSpec, patch: str, rule: str | None, loader: Loader = pedalboard.load_plugin) -> Any:
    """Load the instrument of `spec` and apply its preset, state and parameters.

    Every problem is a Vst3Error saying which patch and rule it concerns, so a bad
    map stops the run with one clear message instead of failing every track.
    """
    where = _where(patch, rule)
    if not spec.plugin:
        raise Vst3Error(f"{where}: no VST3 plugin given; {_HINT.format(patch=patch)}")
    path = Path(spec.plugin).expanduser()
    if not path.exists():
        raise Vst3Error(f"{where}: VST3 plugin not found: {path}; {_HINT.format(patch=patch)}")
    try:
        plugin = loader(str(path), plugin_name=spec.plugin_name)
    except Exception as exc:
        reason = " ".join(str(exc).split())  # pedalboard's message spans lines
        raise Vst3Error(f"{where}: cannot load VST3 plugin {path}: {reason}") from exc
    name = _plugin_name(plugin, path.name)
    if not getattr(plugin, "is_instrument", False):
        raise Vst3Error(f"{where}: {name} is an effect, not an instrument; a render patch needs an instrument plugin")
    if spec.preset_file:
        preset = Path(spec.preset_file).expanduser()
        if not preset.is_file():
            raise Vst3Error(f"{where}: preset file not found: {preset}")
        try:
            plugin.load_preset(str(preset))
        except Exception as exc:
            raise Vst3Error(f"{where}: {name} cannot load preset {preset}: {exc}") from exc
    if spec.state_file:
        state = Path(spec.state_file).expanduser()
        if not state.is_file():
            raise Vst3Error(f"{where}: state file not found: {state}")
        try:
            plugin.raw_state = state.read_bytes()
        except Exception as exc:
            raise Vst3Error(f"{where}: {name} rejects the state in {state}: {exc}") from exc
    valid = list(plugin.parameters)
    for key, value in spec.parameters.items():
        if key not in plugin.parameters:
            shown = ", ".join(valid[:_MAX_LISTED]) + (", ..." if len(valid) > _MAX_LISTED else "")
            raise Vst3Error(f"{where}: {name} has no parameter '{key}' ({len(valid)} parameters: {shown or 'none'})")
        try:
            setattr(plugin, key, value)
        except Exception as exc:
            raise Vst3Error(f"{where}: {name} parameter '{key}' = {value!r}: {exc}") from exc
    return plugin


_CACHE: dict[tuple[str, str], Any] = {}


def cached_vst3(spec: PatchSpec, patch: str, rule: str | None, loader: Loader = pedalboard.load_plugin) -> Any:
    """The plugin for `spec`, loaded once per process: loading (and warming up) a synth costs seconds."""
    key = (patch, spec.model_dump_json())
    if key not in _CACHE:
        _CACHE[key] = load_vst3(spec, patch, rule, loader)
    return _CACHE[key]


def to_message(event: SynthEvent, time: float) -> mido.Message | None:
    """The MIDI message for one event; None for program changes (the patch defines the sound)."""
    if event.kind == "note_on":
        return mido.Message("note_on", channel=event.channel, note=event.a, velocity=event.b, time=time)
    if event.kind == "note_off":
        # Release velocity is not kept in the events; 64 is MIDI's neutral value.
        return mido.Message("note_off", channel=event.channel, note=event.a, velocity=event.b or 64, time=time)
    if event.kind == "control":
        return mido.Message("control_change", channel=event.channel, control=event.a, value=event.b, time=time)
    if event.kind == "pitch_bend":
        return mido.Message("pitchwheel", channel=event.channel, pitch=event.a, time=time)
    return None


class Vst3Backend:
    """A Backend rendering through one loaded VST3 instrument (or anything with its call signature)."""

    name = "vst3"

    def __init__(self, plugin: Any):
        self.plugin = plugin
        self.plugin_name = _plugin_name(plugin)
        self.channels: int | None = None  # the plugin's output channels, learnt on the first call

    @classmethod
    def from_spec(cls, spec: PatchSpec, patch: str, rule: str | None) -> Vst3Backend:
        return cls(cached_vst3(spec, patch, rule))

    def render(
        self, events: Sequence[SynthEvent], end_s: float, sample_rate: int, chunk_frames: int
    ) -> Iterator[np.ndarray]:
        total = round(end_s * sample_rate)
        step = max(1, min(chunk_frames, MAX_CALL_FRAMES))
        timed = sorted(
            ((max(0, round(e.time_s * sample_rate)), e) for e in events if e.kind != "program"), key=lambda fe: fe[0]
        )
        # No separate plugin.reset(): the first call passes reset=True, which does the same
        # (and for plugins pedalboard reloads on reset, a second reset would double the cost).
        i = 0
        for start in range(0, total, step):
            frames = min(step, total - start)
            messages, same, previous = [], 0, None
            while i < len(timed) and timed[i][0] < start + frames:
                frame, event = timed[i]
                i += 1
                same = same + 1 if frame == previous else 0
                previous = frame
                offset = 0.5 + min(same * _SAME_SAMPLE_STEP, _SAME_SAMPLE_MAX)
                try:
                    msg = to_message(event, (frame - start + offset) / sample_rate)
                except (TypeError, ValueError) as exc:
                    raise ItemError(f"bad MIDI event {event}: {exc}") from exc
                if msg is not None:
                    messages.append(msg)
            yield self._call(messages, start, frames, sample_rate)

    def _call(self, messages: list[mido.Message], start: int, frames: int, sample_rate: int) -> np.ndarray:
        """Render `frames` frames from frame `start` as float32 (frames, 2); NaN passes through."""
        duration = (frames + 0.5) / sample_rate
        first = start == 0
        try:
            try:
                audio = self.plugin(
                    messages,
                    duration=duration,
                    sample_rate=sample_rate,
                    num_channels=self.channels or 2,
                    buffer_size=BUFFER_SIZE,
                    reset=first,
                )
                self.channels = self.channels or 2
            except ValueError as exc:
                if self.channels is not None or "channel" not in str(exc):
                    raise
                # A mono main bus: pedalboard refuses num_channels=2 before rendering anything.
                audio = self.plugin(
                    messages,
                    duration=duration,
                    sample_rate=sample_rate,
                    num_channels=1,
                    buffer_size=BUFFER_SIZE,
                    reset=first,
                )
                self.channels = 1
        except Exception as exc:
            raise ItemError(f"vst3 plugin '{self.plugin_name}' failed at {start / sample_rate:.3f} s: {exc}") from exc
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 1:
            audio = audio[np.newaxis, :]
        if audio.shape[0] == 1:
            audio = np.repeat(audio, 2, axis=0)
        out = np.zeros((frames, 2), dtype=np.float32)
        n = min(frames, audio.shape[1])
        out[:n] = audio[:2, :n].T
        return out
