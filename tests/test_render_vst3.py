"""The VST3 backend's contract, against a fake instrument that behaves like pedalboard's.

No VST3 instrument is installed here, so FakeSynth honours pedalboard's instrument
call exactly: it parses messages with pedalboard's own normaliser, places them at
trunc(float32(time) * sample_rate) and returns trunc(float32(duration) * sample_rate)
frames, as pedalboard's C++ does. Its voices, phases and releases persist across
calls unless reset, so chunking and state leaks show up in the audio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mido
import numpy as np
import pedalboard
import pytest
import soundfile as sf
from pedalboard.midi_utils import normalize_midi_messages

from pipeline.errors import ConfigError, ItemError
from pipeline.params import PatchSpec
from pipeline.render import vst3
from pipeline.render.events import SynthEvent
from pipeline.render.track import RenderSettings, render_to_file
from pipeline.render.vst3 import Vst3Backend, Vst3Error, cached_vst3, load_vst3

SR = 8000
ORDER = {"program": 0, "control": 1, "pitch_bend": 2, "note_off": 3, "note_on": 4}


class FakeSynth:
    """A cosine per held note (amplitude 0.5 * velocity / 127) with an exponential release."""

    is_instrument = True

    def __init__(
        self,
        *,
        mono: bool = False,
        release_s: float = 0.05,
        fail_at: float | None = None,
        nan_at: float | None = None,
        silent: bool = False,
        frame_error: int = 0,
        n_parameters: int = 3,
    ):
        self.name = "FakeSynth"
        self.mono, self.release_s, self.fail_at, self.nan_at = mono, release_s, fail_at, nan_at
        self.silent, self.frame_error = silent, frame_error
        names = ["cutoff", "resonance", "attack", *[f"macro_{i}" for i in range(n_parameters)]]
        self.parameters: dict[str, Any] = {n: object() for n in names[:n_parameters]}
        self.calls: list[dict[str, Any]] = []
        self.log: list[tuple[int, mido.Message]] = []  # (absolute sample, message) as received
        self.presets: list[str] = []
        self.state = b""
        self.resets = 0
        self.reset()

    @property
    def raw_state(self) -> bytes:
        return self.state

    @raw_state.setter
    def raw_state(self, value: bytes) -> None:
        self.state = value
        self.resonance = 0.7

    def load_preset(self, path: str) -> None:
        self.presets.append(path)
        self.cutoff = 0.9

    def reset(self) -> None:
        self.resets += 1
        self.position = 0
        self.voices: dict[int, list[Any]] = {}  # note -> [on sample, velocity, off sample or None]

    def __call__(self, midi_messages, duration, sample_rate, num_channels=2, buffer_size=8192, reset=True):
        self.calls.append({"channels": num_channels, "reset": reset, "duration": duration, "block": buffer_size})
        if reset:
            self.reset()
        if self.mono and num_channels != 1:
            raise ValueError(
                f"Plugin '{self.name}' does not support {num_channels}-channel output. "
                "(Main bus currently expects 0 input channels and 1 output channels.)"
            )
        sr = np.float32(sample_rate)
        frames = int(np.float32(duration) * sr)
        if self.fail_at is not None and self.position <= round(self.fail_at * sample_rate) < self.position + frames:
            raise RuntimeError("boom")
        timed = [(int(np.float32(t) * sr), data) for data, t in normalize_midi_messages(midi_messages)]
        timed = sorted((tm for tm in timed if tm[0] < frames), key=lambda tm: tm[0])  # stable: same-sample order kept
        out = np.zeros(frames)
        cursor = 0
        for sample, data in [*timed, (frames, None)]:
            out[cursor:sample] = self._voices(self.position + cursor, self.position + sample, sample_rate)
            cursor = sample
            if data is not None:
                self._apply(self.position + sample, mido.Message.from_bytes(data))
        absolute = self.position + np.arange(frames)
        self.position += frames
        if self.nan_at is not None:
            out[absolute >= round(self.nan_at * sample_rate)] = np.nan
        if self.silent:
            out[:] = 0.0
        out = out[: frames + self.frame_error] if self.frame_error < 0 else np.pad(out, (0, self.frame_error))
        audio = out[np.newaxis] if self.mono else np.stack([out, 0.5 * out])
        return audio.astype(np.float32)

    def _apply(self, sample: int, msg: mido.Message) -> None:
        self.log.append((sample, msg))
        if msg.type == "note_on" and msg.velocity > 0:
            self.voices[msg.note] = [sample, msg.velocity, None]
        elif msg.type in ("note_on", "note_off") and msg.note in self.voices and self.voices[msg.note][2] is None:
            self.voices[msg.note][2] = sample

    def _voices(self, a: int, b: int, sample_rate: int) -> np.ndarray:
        n = np.arange(a, b)
        out = np.zeros(len(n))
        cut = 10 * self.release_s * sample_rate
        for note, (on, velocity, off) in self.voices.items():
            x = 0.5 * velocity / 127 * np.cos(2 * np.pi * 440 * 2 ** ((note - 69) / 12) * (n - on) / sample_rate)
            if off is not None:
                k = n - off
                x *= np.where(k >= 0, np.exp(-np.maximum(k, 0) / (self.release_s * sample_rate)), 1.0)
                x[k >= cut] = 0.0
            out += x
        return out


def ev(kind: str, t: float, a: int = 60, b: int = 0, channel: int = 0) -> SynthEvent:
    return SynthEvent(t, ORDER[kind], kind, channel, a, b)


def note(start: float, end: float, pitch: int = 60, velocity: int = 100) -> list[SynthEvent]:
    return [ev("note_on", start, pitch, velocity), ev("note_off", end, pitch)]


def render(backend: Vst3Backend, events: list[SynthEvent], end_s: float, chunk_frames: int, sr: int = SR) -> np.ndarray:
    """All chunks joined, after checking the Backend contract on each."""
    chunks = list(backend.render(sorted(events), end_s, sr, chunk_frames))
    for chunk in chunks:
        assert chunk.dtype == np.float32 and chunk.ndim == 2 and chunk.shape[1] == 2
        assert 0 < len(chunk) <= chunk_frames
    audio = np.concatenate(chunks)
    assert len(audio) == round(end_s * sr)
    return audio


# --- messages and timing ----------------------------------------------------------


@pytest.mark.parametrize("chunk_frames", [100, 997, 10**6])
def test_messages_reach_the_plugin_on_the_sample_of_their_time(chunk_frames: int) -> None:
    # Times exactly on, just before and just after chunk boundaries, and between samples.
    times = [0.0, 99 / SR, 100 / SR, 101 / SR, 0.0375, 0.123456, 997 / SR, 1994 / SR, 0.3 - 1e-9, 0.3]
    events = [ev("program", 0.0, 5)]
    for i, t in enumerate(times):
        events += [ev("note_on", t, 40 + i, 20 + i), ev("note_off", t + 0.01, 40 + i)]
    events += [ev("control", 0.05, 64, 127), ev("control", 0.2, 1, 33), ev("pitch_bend", 0.1, -8192)]
    events += [ev("pitch_bend", 0.15, 8191), ev("pitch_bend", 0.25, 1234, channel=9)]
    synth = FakeSynth()
    render(Vst3Backend(synth), events, 0.5, chunk_frames)

    got = [(s, m.type, m.channel, m.dict().get("note"), m.dict().get("velocity")) for s, m in synth.log]
    want = []
    for e in sorted(events):
        if e.kind in ("note_on", "note_off"):
            want.append((round(e.time_s * SR), e.kind, e.channel, e.a, e.b if e.kind == "note_on" else 64))
        elif e.kind == "control":
            want.append((round(e.time_s * SR), "control_change", e.channel, None, None))
        elif e.kind == "pitch_bend":
            want.append((round(e.time_s * SR), "pitchwheel", e.channel, None, None))
    assert got == want  # program changes are not sent: the patch defines the sound
    controls = [(s, m.control, m.value) for s, m in synth.log if m.type == "control_change"]
    assert controls == [(400, 64, 127), (1600, 1, 33)]
    bends = [(s, m.channel, m.pitch) for s, m in synth.log if m.type == "pitchwheel"]
    assert bends == [(800, 0, -8192), (1200, 0, 8191), (2000, 9, 1234)]


def test_note_onsets_in_the_audio_land_at_the_midi_times() -> None:
    # On, just before and just after 100-frame chunk boundaries, and between samples.
    starts = [0.05, 0.1249, 0.2, 0.3 + 0.3 / SR, 0.4 + 0.6 / SR, 0.6 - 1e-7, 0.8 + 101 / SR]
    events = [e for s in starts for e in note(s, s + 0.02)]
    audio = render(Vst3Backend(FakeSynth(release_s=0.001)), events, 1.2, 100)
    sounding = np.abs(audio[:, 0]) > 0
    onsets = np.flatnonzero(sounding[1:] & ~sounding[:-1]) + 1
    assert onsets.tolist() == [round(s * SR) for s in starts]  # exact, well within 1 ms


def test_velocity_scales_amplitude() -> None:
    events = note(0.1, 0.2, velocity=100) + note(0.5, 0.6, velocity=50)
    audio = render(Vst3Backend(FakeSynth(release_s=0.001)), events, 1.0, 256)
    loud, soft = np.abs(audio[:2400, 0]).max(), np.abs(audio[3200:, 0]).max()
    assert loud == pytest.approx(0.5 * 100 / 127, rel=1e-6)
    assert loud / soft == pytest.approx(2.0, rel=1e-6)


def test_many_messages_at_one_instant_are_accepted() -> None:
    """pedalboard rejects a call where over 100 messages share a timestamp (it suspects delta times)."""
    events = [ev("control", 0.25, 7, v % 128) for v in range(150)] + note(0.1, 0.4)
    synth = FakeSynth()
    render(Vst3Backend(synth), events, 0.5, 10**6)
    volumes = [(s, m.value) for s, m in synth.log if m.type == "control_change"]
    assert volumes == [(2000, v) for v in sorted(v % 128 for v in range(150))]  # all on their sample, in order


def test_plugin_output_of_the_wrong_length_is_padded_or_cut() -> None:
    for error in (-3, 5):
        audio = render(Vst3Backend(FakeSynth(frame_error=error)), note(0.0, 0.3), 0.5, 300)
        if error < 0:
            assert np.all(audio[297:300] == 0) and np.any(audio[300:303] != 0)


def test_calls_stay_short_enough_for_exact_float32_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vst3, "MAX_CALL_FRAMES", 500)
    synth = FakeSynth()
    chunks = list(Vst3Backend(synth).render(sorted(note(0.0, 0.2)), 0.3, SR, 10**6))
    assert [len(c) for c in chunks] == [500, 500, 500, 500, 400]
    assert [c["reset"] for c in synth.calls] == [True, False, False, False, False]


# --- channels ---------------------------------------------------------------------


def test_mono_plugin_is_upmixed_to_identical_channels() -> None:
    synth = FakeSynth(mono=True)
    backend = Vst3Backend(synth)
    audio = render(backend, note(0.0, 0.2), 0.3, 1000)
    assert np.any(audio != 0) and np.array_equal(audio[:, 0], audio[:, 1])
    assert [c["channels"] for c in synth.calls] == [2, 1, 1, 1]  # learnt once, then remembered
    render(backend, note(0.0, 0.2), 0.3, 1000)
    assert [c["channels"] for c in synth.calls[4:]] == [1, 1, 1]


def test_stereo_plugin_stays_stereo() -> None:
    synth = FakeSynth()
    audio = render(Vst3Backend(synth), note(0.0, 0.2), 0.3, 1000)
    assert np.any(audio[:, 0] != 0) and np.allclose(audio[:, 1], 0.5 * audio[:, 0])
    assert {c["channels"] for c in synth.calls} == {2}


def test_the_host_block_is_the_configured_one_on_every_call() -> None:
    synth = FakeSynth()
    render(Vst3Backend(synth), note(0.0, 0.2), 0.5, 1000)
    render(Vst3Backend(synth, 512), note(0.0, 0.2), 0.5, 1000)
    blocks = [c["block"] for c in synth.calls]
    assert blocks[:4] == [128] * 4 and blocks[4:] == [512] * 4


def test_a_mono_retry_is_only_for_channel_errors() -> None:
    class Broken(FakeSynth):
        def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
            raise ValueError("Plugin 'FakeSynth' expects audio as input, but was provided MIDI messages.")

    with pytest.raises(ItemError, match=r"vst3 plugin 'FakeSynth' failed at 0\.000 s: .*expects audio"):
        render(Vst3Backend(Broken()), note(0.0, 0.2), 0.3, 1000)


# --- state ------------------------------------------------------------------------


def test_nothing_leaks_from_one_track_to_the_next() -> None:
    synth = FakeSynth()
    backend = Vst3Backend(synth)
    held = render(backend, [ev("note_on", 0.0, 60, 100), ev("note_off", 5.0, 60)], 1.0, 300)
    assert np.all(held[-300:] != 0)  # still sounding when track A ends
    resets = synth.resets
    track_b = render(backend, note(0.5, 0.7, 72), 1.0, 300)
    assert synth.resets > resets
    assert np.all(track_b[:4000] == 0) and np.any(track_b[4000:] != 0)


def test_chunked_render_equals_unchunked_render() -> None:
    events = note(0.0, 0.8, 60) + note(0.1249, 0.3, 64, 90) + note(0.31, 1.1, 67, 40) + note(0.9, 1.2, 72)
    events += [ev("pitch_bend", 0.2, 300), ev("control", 0.5, 64, 127)]
    backend = Vst3Backend(FakeSynth())
    whole = render(backend, events, 1.5, 10**6)
    # 251 and 1009 frames: trunc(float32(frames / 8000) * 8000) is one short, so a naive duration loses samples.
    for chunk_frames in (1, 97, 251, 1000, 1009):
        assert np.array_equal(render(backend, events, 1.5, chunk_frames), whole)


# --- through render_to_file ----------------------------------------------------------


def test_release_tail_is_kept_and_trailing_silence_trimmed(tmp_path: Path) -> None:
    settings = RenderSettings(sample_rate=SR, tail_s=1.0, trim_db=-60.0, chunk_s=0.1)
    path = tmp_path / "stem.flac"
    result = render_to_file(Vst3Backend(FakeSynth(release_s=0.05)), note(0.2, 0.7), path, settings)
    audio, sr = sf.read(path, dtype="float32")
    assert sr == SR and len(audio) == result.frames
    note_end = round(0.7 * SR)
    assert note_end < result.frames < note_end + SR  # within [note end, note end + tail_s]
    # The release 0.394 * exp(-t / 0.05 s) falls below -60 dBFS after about 0.3 s.
    assert abs(result.frames - (note_end + 0.05 * SR * np.log(0.5 * 100 / 127 / 1e-3))) < SR / 440 + 2
    assert np.abs(audio[note_end : note_end + 400]).max() > 0.1  # the release itself is there


@pytest.mark.parametrize(
    ("synth", "message"),
    [
        (FakeSynth(fail_at=0.3), r"^vst3 plugin 'FakeSynth' failed at 0\.300 s: boom$"),
        (FakeSynth(nan_at=0.25), r"vst3 returned NaN or infinite samples at 0\.250 s"),
        (FakeSynth(silent=True), r"vst3 rendered silence"),
    ],
    ids=["plugin-raises", "nan", "silence"],
)
def test_failures_become_item_errors_and_leave_no_file(tmp_path: Path, synth: FakeSynth, message: str) -> None:
    settings = RenderSettings(sample_rate=SR, tail_s=0.5, chunk_s=0.1)
    path = tmp_path / "out" / "stem.flac"
    with pytest.raises(ItemError, match=message):
        render_to_file(Vst3Backend(synth), note(0.1, 0.6), path, settings)
    assert list(path.parent.iterdir()) == []


# --- loading ----------------------------------------------------------------------


def spec(plugin: Path | str, **kw: Any) -> PatchSpec:
    return PatchSpec(backend="vst3", plugin=str(plugin), **kw)


def test_missing_plugin_names_patch_rule_and_path(tmp_path: Path) -> None:
    missing = tmp_path / "Surge XT.vst3"
    with pytest.raises(Vst3Error) as info:
        load_vst3(spec(missing), "lead", "synth-leads")  # pedalboard's real loader
    msg = str(info.value)
    assert msg.startswith(f"patch 'lead' (rule 'synth-leads'): VST3 plugin not found: {missing}")
    assert "render.patches.lead.plugin" in msg and "Surge XT" in msg
    assert isinstance(info.value, ConfigError)


def test_a_file_that_is_no_plugin_is_a_config_error(tmp_path: Path) -> None:
    fake = tmp_path / "x.vst3"
    fake.write_text("not a plugin")
    with pytest.raises(ImportError, match="unsupported plugin format"):
        pedalboard.load_plugin(str(fake))
    with pytest.raises(Vst3Error, match=r"^patch 'pad' \(rule 'pads'\): cannot load VST3 plugin .*unsupported plugin"):
        load_vst3(spec(fake), "pad", "pads")


def test_an_effect_is_refused(tmp_path: Path) -> None:
    (tmp_path / "verb.vst3").write_text("")
    reverb = pedalboard.Reverb()  # a real pedalboard effect: is_instrument is False
    assert reverb.is_instrument is False
    with pytest.raises(Vst3Error, match=r"^patch 'pad': verb\.vst3 is an effect, not an instrument; a render patch"):
        load_vst3(spec(tmp_path / "verb.vst3"), "pad", None, loader=lambda path, plugin_name=None: reverb)


def test_preset_state_and_parameters_are_applied_in_order(tmp_path: Path) -> None:
    (tmp_path / "synth.vst3").mkdir()
    (tmp_path / "warm.vstpreset").write_bytes(b"preset")
    xml = b'<?xml version="1.0"?><VST3PluginState><IComponent>AA==</IComponent></VST3PluginState>'
    state = b"VC2!" + len(xml).to_bytes(4, "little") + xml + b"\0"  # pedalboard's raw_state layout
    (tmp_path / "warm.state").write_bytes(state)
    synth = FakeSynth()
    seen: list[tuple[str, str | None]] = []

    def loader(path: str, plugin_name: str | None = None) -> FakeSynth:
        seen.append((path, plugin_name))
        return synth

    patch = spec(
        tmp_path / "synth.vst3",
        plugin_name="Synth B",
        preset_file=str(tmp_path / "warm.vstpreset"),
        state_file=str(tmp_path / "warm.state"),
        parameters={"cutoff": 0.2},
    )
    assert load_vst3(patch, "lead", "leads", loader=loader) is synth
    assert seen == [(str(tmp_path / "synth.vst3"), "Synth B")]
    assert synth.presets == [str(tmp_path / "warm.vstpreset")] and synth.state == state
    assert (synth.cutoff, synth.resonance) == (0.2, 0.7)  # parameters win over preset and state


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"preset_file": "nope.vstpreset"}, r"preset file not found: nope\.vstpreset"),
        ({"state_file": "nope.state"}, r"state file not found: nope\.state"),
        ({"state_file": "garbage.state"}, r"garbage\.state is not a VST3 state .*: it does not start with b'VC2!'"),
        (
            {"parameters": {"cutof": 0.5}},
            r"FakeSynth has no parameter 'cutof' \(14 parameters, names match case-insensitively; nearest: cutoff\)$",
        ),
        ({"parameters": {"zzz": 0.5}}, r"FakeSynth has no parameter 'zzz' \(14 parameters, .*; no similar name\)$"),
    ],
)
def test_bad_patch_settings_are_config_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], message: str
) -> None:
    (tmp_path / "synth.vst3").mkdir()
    (tmp_path / "garbage.state").write_bytes(b"\x00state")
    monkeypatch.chdir(tmp_path)
    synth = FakeSynth(n_parameters=14)
    with pytest.raises(Vst3Error, match=r"^patch 'lead' \(rule 'leads'\): " + message):
        load_vst3(spec(tmp_path / "synth.vst3", **fields), "lead", "leads", loader=lambda p, plugin_name=None: synth)


def test_loader_errors_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "shell.vst3").mkdir()

    def loader(path: str, plugin_name: str | None = None) -> Any:
        raise RuntimeError("Plugin file contains 2 plugins: ['A', 'B']; pass plugin_name")

    with pytest.raises(Vst3Error, match=r"^patch 's' \(rule 'r'\): cannot load VST3 plugin .*pass plugin_name"):
        load_vst3(spec(tmp_path / "shell.vst3"), "s", "r", loader=loader)


def test_each_plugin_loads_once_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vst3, "_CACHE", {})
    (tmp_path / "synth.vst3").mkdir()
    loads: list[str] = []

    def loader(path: str, plugin_name: str | None = None) -> FakeSynth:
        loads.append(path)
        return FakeSynth()

    a = spec(tmp_path / "synth.vst3", parameters={"cutoff": 0.3})
    first = cached_vst3(a, "lead", "leads", loader=loader)
    assert cached_vst3(spec(tmp_path / "synth.vst3", parameters={"cutoff": 0.3}), "lead", "x", loader=loader) is first
    assert len(loads) == 1
    assert (
        cached_vst3(spec(tmp_path / "synth.vst3", parameters={"cutoff": 0.4}), "lead", None, loader=loader) is not first
    )
    assert cached_vst3(a, "bass", None, loader=loader) is not first
    assert len(loads) == 3


def test_a_passed_check_is_recorded_and_skips_the_next_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.params import RenderParams
    from pipeline.render.vst3 import checked_reproducible

    monkeypatch.setattr(vst3, "_CACHE", {})
    bundle = tmp_path / "synth.vst3" / "Contents" / "x86_64-linux"
    bundle.mkdir(parents=True)
    (bundle / "synth.so").write_bytes(b"v1")
    loads: list[str] = []

    def loader(path: str, plugin_name: str | None = None) -> FakeSynth:
        loads.append(path)
        return FakeSynth()

    params, cache = RenderParams(), tmp_path / "checks"
    patch = spec(tmp_path / "synth.vst3", parameters={"cutoff": 0.3})

    def check(p: PatchSpec = patch) -> bool:
        vst3._CACHE.clear()  # a new stage process
        return checked_reproducible(p, "lead", "leads", params, cache, loader=loader)

    assert check() is True and len(loads) == 1
    assert check() is True and len(loads) == 1  # recorded: no load
    assert check(spec(tmp_path / "synth.vst3", parameters={"cutoff": 0.4})) is True and len(loads) == 2
    (bundle / "synth.so").write_bytes(b"v2, a rebuilt plugin")
    assert check() is True and len(loads) == 3  # the plugin changed: checked again
    bad = spec(tmp_path / "synth.vst3", parameters={"nope": 1.0})
    for _ in range(2):  # a failed check is never recorded
        with pytest.raises(Vst3Error, match="has no parameter 'nope'"):
            check(bad)
    assert len(loads) == 5 and len(list(cache.iterdir())) == 3
