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

import difflib
import hashlib
import json
import struct
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pedalboard
import pretty_midi

from pipeline.errors import ConfigError, ItemError
from pipeline.io.atomic import atomic_open
from pipeline.params import PatchSpec, RenderParams
from pipeline.render.events import SynthEvent, instrument_events

# One plugin call covers at most this many frames: float32 time arithmetic in
# pedalboard stays well within half a sample up to here (2**20 * 2**-23 = 1/8).
MAX_CALL_FRAMES = 2**20
# The host block (frames per process call), constant: pedalboard re-prepares (and may reset) a plugin
# whose block size grows. Small, because some plugins apply a block's MIDI events at its start: 128
# frames bound that error to 2.9 ms at 44.1 kHz, and cost nothing measurable (render.vst3_block_frames).
BLOCK_FRAMES = 128
# Several messages at one sample get distinct times a millionth of a sample apart:
# pedalboard rejects a call where over 100 messages share one timestamp.
_SAME_SAMPLE_STEP = 1e-6
_SAME_SAMPLE_MAX = 0.25
_HINT = (
    "install a VST3 instrument (e.g. Surge XT, Vital, Dexed or sfizz) and point "
    "render.patches.{patch}.plugin at its .vst3"
)
_MAX_SUGGESTED = 5
# pedalboard's raw_state of a VST3 plugin: JUCE's binary XML, b"VC2!" + little-endian uint32 size + XML.
_STATE_MAGIC = b"VC2!"

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
        data = state.read_bytes()
        problem = state_problem(data)
        if problem:
            raise Vst3Error(f"{where}: {state} is not a VST3 state saved from pedalboard's raw_state: {problem}")
        try:
            plugin.raw_state = data
        except Exception as exc:
            raise Vst3Error(f"{where}: {name} rejects the state in {state}: {exc}") from exc
    if spec.parameters:  # listing a plugin's parameters can take seconds (2,084 of them in Kars): only when needed
        names = parameter_names(plugin)
        for key, value in spec.parameters.items():
            real = names.get(key.lower())
            if real is None:
                raise Vst3Error(f"{where}: {name} has no parameter '{key}' ({unknown_parameter_hint(key, names)})")
            try:
                setattr(plugin, real, value)
            except Exception as exc:
                raise Vst3Error(f"{where}: {name} parameter '{real}' = {value!r}: {exc}") from exc
    return plugin


def state_problem(data: bytes) -> str | None:
    """Why `data` cannot be a VST3 plugin state, or None. pedalboard accepts any bytes silently (the
    plugin keeps its old state), so a wrong file would render the default sound without a word."""
    if not data.startswith(_STATE_MAGIC) or len(data) < 8:
        return f"it does not start with {_STATE_MAGIC!r}"
    (size,) = struct.unpack("<I", data[4:8])
    if len(data) < 8 + size:
        return f"it is truncated ({len(data) - 8} of {size} bytes)"
    try:
        root = ET.fromstring(data[8 : 8 + size].rstrip(b"\0"))
    except ET.ParseError as exc:
        return f"its XML does not parse ({exc})"
    if root.tag != "VST3PluginState":
        return f"its XML is a <{root.tag}>, not a <VST3PluginState>"
    return None


def parameter_names(plugin: Any) -> dict[str, str]:
    """The plugin's parameter names by lower case: its Python names, then their display names."""
    names: dict[str, str] = {}
    for real in plugin.parameters:
        names.setdefault(real.lower(), real)
    for real, param in plugin.parameters.items():
        label = getattr(param, "name", None)
        if isinstance(label, str) and label:
            names.setdefault(label.lower(), real)
    return names


def unknown_parameter_hint(key: str, names: dict[str, str]) -> str:
    """How many parameters there are and the nearest names, so a typo is not hidden in a long list."""
    real = sorted(set(names.values()))
    near = difflib.get_close_matches(key.lower(), list(names), n=_MAX_SUGGESTED, cutoff=0.5)
    nearest = list(dict.fromkeys(names[n] for n in near))
    hint = f"nearest: {', '.join(nearest)}" if nearest else "no similar name"
    return f"{len(real)} parameters, names match case-insensitively; {hint}"


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

    def __init__(self, plugin: Any, block_frames: int = BLOCK_FRAMES):
        self.plugin = plugin
        self.plugin_name = _plugin_name(plugin)
        self.block_frames = block_frames
        self.channels: int | None = None  # the plugin's output channels, learnt on the first call

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
                    buffer_size=self.block_frames,
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
                    buffer_size=self.block_frames,
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


# Two short renders of the same notes: a plugin whose output differs between them (unseeded
# randomness, free-running LFOs) cannot give byte-identical stems, and the run says so.
_PROBE_NOTES = ((0.0, 60), (0.05, 64), (0.1, 67), (0.2, 43))
_PROBE_S = 0.5


def is_reproducible(backend: Vst3Backend, sample_rate: int) -> bool:
    """Whether two renders of the same short phrase, each from a reset, are sample-identical."""
    phrase = pretty_midi.Instrument(0)
    phrase.notes = [pretty_midi.Note(100, pitch, t, t + 0.25) for t, pitch in _PROBE_NOTES]
    events = instrument_events(phrase, 0)
    frames = round(_PROBE_S * sample_rate)
    first, second = (np.concatenate(list(backend.render(events, _PROBE_S, sample_rate, frames))) for _ in range(2))
    return bool(np.array_equal(first, second))


def _files_identity(path: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime in ns) of a file or of every file in a bundle folder, as make and DVC
    tell a changed file: hashing a large plugin binary on every run would cost what the cache saves."""
    if path.is_file():
        st = path.stat()
        return [(path.name, st.st_size, st.st_mtime_ns)]
    found = []
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        found.append((f.relative_to(path).as_posix(), st.st_size, st.st_mtime_ns))
    return found


def check_key(spec: PatchSpec, params: RenderParams) -> str:
    """What a patch check depends on: the spec, the plugin's and settings files' identities, the host."""
    files = {}
    for field in ("plugin", "preset_file", "state_file"):
        value = getattr(spec, field)
        if value:
            path = Path(value).expanduser().resolve()
            files[field] = [str(path), _files_identity(path) if path.exists() else None]
    blob = json.dumps(
        [spec.model_dump(mode="json"), files, pedalboard.__version__, params.sample_rate, params.vst3_block_frames],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def checked_reproducible(
    spec: PatchSpec,
    patch: str,
    rule: str | None,
    params: RenderParams,
    cache_dir: Path | None = None,
    loader: Loader = pedalboard.load_plugin,
) -> bool:
    """Check a VST3 patch (Vst3Error if it is configured wrongly) and probe whether it is reproducible.

    A passed check is recorded under `cache_dir`, keyed by everything it depends on (check_key), so
    the next run skips the load; a failed one is never recorded and fails again with its message."""
    record = cache_dir / f"{check_key(spec, params)}.json" if cache_dir is not None else None
    if record is not None and record.is_file():
        try:
            return bool(json.loads(record.read_text())["reproducible"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged record: check again
    backend = Vst3Backend(cached_vst3(spec, patch, rule, loader), params.vst3_block_frames)
    reproducible = is_reproducible(backend, params.sample_rate)
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(record, "w") as fh:
            json.dump({"patch": patch, "plugin": spec.plugin, "reproducible": reproducible}, fh)
    return reproducible
