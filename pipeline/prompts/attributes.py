"""The facts a clip's prompt may state, taken from its `Clip` record.

`Facts` is what every prompt is written from and validated against, the user
message an LLM sees, the input of the few-shot examples and the cache key: one
shape for all of them, so an example file, a clip and an augmented variant are
checked by the same rules. Artist and title are left out on purpose: the model
should learn sounds, not names.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipeline.prompts import vocab
from pipeline.records import Clip, ClipInstrument

HIGH_ENERGY = 0.66  # Spotify energy at or above: "high energy"
LOW_ENERGY = 0.33  # at or below: "low energy"


class InstrumentFacts(BaseModel):
    """One instrument and what its notes do in the clip (notation terms from pipeline/analysis/notation.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="GM instrument or drum kit name")
    family: str
    subfamily: str
    is_drum: bool = False
    role: str | None = None
    speed: str | None = None
    density: str | None = None
    contour: str | None = None
    pitch_register: str | None = None

    @property
    def terms(self) -> frozenset[str]:
        return vocab.instrument_terms(self.name, self.family, self.subfamily, self.is_drum)

    @property
    def display(self) -> tuple[str, ...]:
        return vocab.display_names(self.name, self.subfamily, self.is_drum)


class Facts(BaseModel):
    """Everything a prompt may say about a clip."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["mix", "stem"] = "mix"
    instruments: list[InstrumentFacts] = Field(min_length=1)
    key: str | None = Field(description="'<tonic> <scale>', e.g. 'F# minor'")
    bpm: float | None = Field(gt=0, description="null: withheld (the tempo varies inside the clip)")
    bars: int | None = Field(ge=1, description="null: withheld (a recording cut by time, its beats unsure)")
    time_signature: str | None = Field(pattern=r"^\d+/\d+$", description="null: withheld (the meter changes)")
    genres: list[str] = Field(default_factory=list)
    timbre: list[str] = Field(default_factory=list)
    fx: list[str] = Field(default_factory=list)
    energy: Literal["high", "low"] | None = None
    loopable: bool = False

    @property
    def tonic(self) -> str | None:
        return self.key.split(" ")[0] if self.key else None

    @property
    def scale(self) -> str | None:
        return self.key.split(" ")[1] if self.key else None

    @property
    def bpm_text(self) -> str | None:
        """The BPM as templates write it: rounded to a whole number (None: withheld)."""
        return str(round(self.bpm)) if self.bpm is not None else None

    def bpm_values(self) -> set[float]:
        """BPM numbers a prompt may state: the rounded value and the value to one decimal (none when withheld)."""
        return {float(round(self.bpm)), round(self.bpm, 1)} if self.bpm is not None else set()

    def allowed_numbers(self) -> set[float]:
        """Every number the facts hold: BPM, bars, the time signature, and digits inside names and labels."""
        out = self.bpm_values() | ({float(self.bars)} if self.bars is not None else set())
        if self.time_signature is not None:
            out.update(float(x) for x in self.time_signature.split("/"))
        texts = [i.name for i in self.instruments] + self.genres + self.fx
        for t in texts:
            out.update(vocab.numbers_in(vocab.key_text_lower(t)))
        return out


def _energy(value: float | None) -> Literal["high", "low"] | None:
    if value is None:
        return None
    return "high" if value >= HIGH_ENERGY else "low" if value <= LOW_ENERGY else None


def _instrument(inst: ClipInstrument) -> InstrumentFacts:
    n = inst.notation
    if n is None:  # a recording's instrument: what its notes do is unknown
        return InstrumentFacts(name=inst.name, family=inst.family, subfamily=inst.subfamily, is_drum=inst.is_drum)
    return InstrumentFacts(
        name=inst.name,
        family=inst.family,
        subfamily=inst.subfamily,
        is_drum=inst.is_drum,
        role=n.role,
        speed=n.speed,
        density=n.density,
        contour=n.contour,
        pitch_register=n.pitch_register,
    )


def describes_sound(tag: str) -> bool:
    """A genre tag a prompt may repeat: one naming no instrument, key or effect ("female vocalists",
    "piano", "a minor" describe the song's recording or mislead; the clip is a rendering of its MIDI)."""
    low = vocab.key_text_lower(tag)
    norm = vocab.normalise(tag)
    return not (
        vocab.lie_regex().search(norm)
        or vocab.KEY_RE.search(low)
        or vocab.SCALE_RE.search(low)
        or vocab.FX_RE.search(low)
        or "bpm" in low
    )


def clip_facts(clip: Clip) -> Facts:
    """The facts of a clip (a mix, a solo stem or an augmented variant)."""
    return Facts(
        kind=clip.kind,
        instruments=[_instrument(i) for i in clip.instruments],
        key=clip.key,
        bpm=clip.bpm,
        bars=clip.bars,
        time_signature=clip.time_signature,
        genres=[g for g in dict.fromkeys(clip.genre_tags) if describes_sound(g)],
        timbre=list(dict.fromkeys(clip.timbre)),
        fx=list(dict.fromkeys(clip.fx)),
        energy=_energy(clip.energy),
        loopable=clip.loopable,
    )


def _notation_text(i: InstrumentFacts) -> str:
    parts = [i.role or ""]
    parts += [f"{v} {label}" for v, label in ((i.speed, "speed"), (i.density, "density")) if v]
    parts += [f"{v} {label}" for v, label in ((i.contour, "contour"), (i.pitch_register, "register")) if v]
    return ", ".join(p for p in parts if p)


def attribute_lines(facts: Facts, rng: np.random.Generator | None = None) -> list[str]:
    """The facts as "name: value" lines for an LLM (in random order when `rng` is given)."""
    inst = "; ".join(
        f"{i.name} ({i.family}{': ' + _notation_text(i) if _notation_text(i) else ''})" for i in facts.instruments
    )
    lines = [
        f"instruments: {inst}",
        f"key: {facts.key}" if facts.key else "key: (none; state no key or scale)",
        f"bpm: {facts.bpm_text}" if facts.bpm_text else "bpm: (none; state no BPM or tempo number)",
        f"bars: {facts.bars}" if facts.bars is not None else "bars: (none; state no number of bars)",
        f"time signature: {facts.time_signature}"
        if facts.time_signature
        else "time signature: (none; state no time signature or meter)",
        f"clip: {'full mix' if facts.kind == 'mix' else 'solo instrument'}{', loopable' if facts.loopable else ''}",
    ]
    lines.append(f"genre: {', '.join(facts.genres)}" if facts.genres else "genre: (none; name no genre or mood)")
    if facts.timbre:
        lines.append(f"timbre: {', '.join(facts.timbre)}")
    effects = vocab.effect_labels(facts.fx)  # 'Wet'/'Dry' name no effect
    lines.append(f"effects: {', '.join(effects)}" if effects else "effects: none (dry)")
    if facts.energy:
        lines.append(f"energy: {facts.energy}")
    if rng is not None:
        lines = [lines[i] for i in rng.permutation(len(lines))]
    return lines
