"""FX chains (pedalboard) and the labels a prompt may state about them.

A chain is a list of `(effect, level, args)` steps, recorded as such in the
variant's transforms and applied in signal-chain order (drive, then colour, then
modulation, then time-based effects). Labels follow Foundation-1's vocabulary:
graded effects state their level ('High Reverb'), the others their name
('Ping Pong Delay'); with `wet_dry_labels` a variant is also 'Wet' or 'Dry'.
EFFECTS is the one table of what each effect is called and whether it distorts
(a distorting chain's output is never called 'clean', whatever the grit measure reads).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.errors import ConfigError
from pipeline.params import FX_EFFECT_ARGS, FxAxisParams


@dataclass(frozen=True)
class Effect:
    """What the pipeline knows about one effect: its label and what it does to the sound."""

    label: str  # graded effects state their level before it ('High Reverb')
    graded: bool
    distorts: bool = False  # adds distortion: what passes through it is never called 'clean'


# Signal-chain order: distortion and bit reduction first, filters, modulation, then echoes and the room.
EFFECTS: dict[str, Effect] = {
    "distortion": Effect("Distortion", graded=True, distorts=True),
    "bitcrush": Effect("Bitcrushed", graded=False, distorts=True),
    "lowpass": Effect("Low-pass Filter", graded=False),
    "chorus": Effect("Chorus", graded=False),
    "phaser": Effect("Phaser", graded=False),
    "delay": Effect("Delay", graded=True),
    "ping_pong_delay": Effect("Ping Pong Delay", graded=False),
    "reverb": Effect("Reverb", graded=True),
}
EFFECT_ORDER: tuple[str, ...] = tuple(EFFECTS)
GRADED: dict[str, str] = {n: e.label for n, e in EFFECTS.items() if e.graded}
UNGRADED: dict[str, str] = {n: e.label for n, e in EFFECTS.items() if not e.graded}
WET, DRY = "Wet", "Dry"
_PING_PONG_FLOOR = 1e-3  # echoes quieter than this (-60 dB) are not rendered


def fx_vocabulary() -> list[str]:
    """Every label the FX axis can state."""
    graded = [f"{lvl.capitalize()} {name}" for name in GRADED.values() for lvl in ("low", "medium", "high")]
    return [*graded, *UNGRADED.values(), WET, DRY]


@dataclass(frozen=True)
class FxStep:
    effect: str
    level: str
    args: Mapping[str, float]

    def label(self) -> str:
        effect = EFFECTS[self.effect]
        return f"{self.level.capitalize()} {effect.label}" if effect.graded else effect.label

    def to_dict(self) -> dict[str, object]:
        return {"effect": self.effect, "level": self.level, "args": dict(sorted(self.args.items()))}

    @staticmethod
    def from_dict(d: Mapping[str, object]) -> FxStep:
        return FxStep(str(d["effect"]), str(d["level"]), dict(d["args"]))  # type: ignore[arg-type]


def distorts(chain: Sequence[FxStep]) -> bool:
    """Whether any effect of the chain adds distortion (EFFECTS' `distorts`): its output is never 'clean'."""
    return any(EFFECTS[step.effect].distorts for step in chain)


def fx_labels(chain: Sequence[FxStep], wet_dry: bool) -> list[str]:
    labels = [step.label() for step in sorted(chain, key=lambda s: EFFECT_ORDER.index(s.effect))]
    if wet_dry:
        labels.append(WET if chain else DRY)
    return labels


def _plugin(step: FxStep, bpm: float):
    import pedalboard as pb

    a = dict(step.args)
    if step.effect == "reverb":
        return pb.Reverb(**a)
    if step.effect == "delay":
        return pb.Delay(delay_seconds=a.pop("delay_beats", 0.5) * 60.0 / bpm, **a)
    if step.effect == "distortion":
        return pb.Distortion(**a)
    if step.effect == "phaser":
        return pb.Phaser(**a)
    if step.effect == "chorus":
        return pb.Chorus(**a)
    if step.effect == "bitcrush":
        return pb.Bitcrush(**a)
    if step.effect == "lowpass":
        return pb.LowpassFilter(**a)
    raise ValueError(f"effect {step.effect!r} has no pedalboard plugin")


def ping_pong(x: np.ndarray, sample_rate: int, delay_s: float, feedback: float, mix: float) -> np.ndarray:
    """Echoes of the mono sum bouncing left, right, left...; each `feedback` times the last."""
    mono = x.mean(axis=1)
    wet = np.zeros_like(x)
    d = max(1, round(delay_s * sample_rate))
    gain, k = 1.0, 1
    while k * d < len(x) and gain >= _PING_PONG_FLOOR:
        wet[k * d :, (k - 1) % 2] += gain * mono[: len(x) - k * d]
        gain *= feedback
        k += 1
    return ((1.0 - mix) * x + mix * wet).astype(np.float32)


def apply_chain(x: np.ndarray, sample_rate: int, chain: Sequence[FxStep], bpm: float) -> np.ndarray:
    """Run (frames, 2) float audio through the chain; the output keeps the input's length."""
    from pedalboard import Pedalboard

    y = np.asarray(x, dtype=np.float32)
    for step in sorted(chain, key=lambda s: EFFECT_ORDER.index(s.effect)):
        if step.effect == "ping_pong_delay":
            a = step.args
            y = ping_pong(y, sample_rate, a.get("delay_beats", 0.5) * 60.0 / bpm, a.get("feedback", 0.4),
                          a.get("mix", 0.35))  # fmt: skip
        else:
            out = Pedalboard([_plugin(step, bpm)])(np.ascontiguousarray(y.T), float(sample_rate))
            y = np.ascontiguousarray(out.T, dtype=np.float32)
    return y


def check_effects(params: FxAxisParams) -> None:
    """Build every configured effect once: a bad argument value is a config error naming its key."""
    for name, effect in params.effects.items():
        for level, args in effect.levels.items():
            step = FxStep(name, level, args)
            key = f"augment.fx.effects.{name}.levels.{level}"
            if name not in FX_EFFECT_ARGS:
                raise ConfigError(f"{key}: unknown effect")
            if name == "ping_pong_delay":
                bad = {k: v for k, v in args.items() if k != "delay_beats" and not 0 <= v <= 1}
                if bad or args.get("delay_beats", 0.5) <= 0:
                    raise ConfigError(f"{key}: delay_beats must be > 0, feedback and mix within 0-1 (got {args})")
                continue
            if "delay_beats" in args and args["delay_beats"] <= 0:
                raise ConfigError(f"{key}: delay_beats must be > 0")
            try:
                plugin = _plugin(step, 120.0)
                plugin.process(np.zeros((2, 64), dtype=np.float32), 44100.0)
            except (ValueError, TypeError, RuntimeError) as exc:
                raise ConfigError(f"{key}: pedalboard rejects {args}: {exc}") from None
