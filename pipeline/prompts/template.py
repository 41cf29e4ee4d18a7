"""Prompts written without a model, in the three styles of the anchors.

- `tags` (Foundation-1): an ordered tag list: instruments, timbre, notation, FX, then
  key, bars and BPM (a withheld key or BPM left out) ("Electric Piano, Warm, Bright, Chord Progression, Medium Reverb,
  A minor, 8 Bars, 120 BPM").
- `subset` (Stable Audio Open): a random subset of the metadata in shuffled order,
  half of the prompts as "key: value" pairs and half bare values, with the case of the
  whole prompt varied. Instruments, key and BPM are always in when the clip has them
  (the validator requires them); the other fields each come with probability SUBSET_FIELD_P.
- `natural`: a sentence from varied frames and phrasings (the LLM's stand-in with the
  `template` backend, and its fallback).

Every choice comes from the `rng` the caller seeds per clip, so a clip's template
prompt is the same whichever backend runs and whether it is a fallback or not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.prompts.attributes import Facts, InstrumentFacts
from pipeline.records import PromptStyle

SUBSET_FIELD_P = 0.5
CASES: tuple[str, ...] = ("lower", "title", "upper", "as-is")
CASE_P: tuple[float, ...] = (0.4, 0.2, 0.1, 0.3)

_CONTOUR_TAG = {"rising": "Rising", "falling": "Falling", "arch": "Arch Contour", "valley": "Valley Contour",
                "static": "Static", "wavy": "Wavy"}  # fmt: skip
_SPEED_TAG = {"fast": "Fast", "slow": "Slow", "moderate": "Medium Speed"}
_DENSITY_TAG = {"dense": "Dense", "sparse": "Sparse"}
_ROLE_VERB = {
    "chord progression": ("playing a chord progression", "comping chords", "playing chords"),
    "sustained chords": ("holding sustained chords", "playing long held chords"),
    "melody": ("playing a {adj}melody", "carrying a {adj}melody"),
    "bassline": ("playing a {adj}bassline", "holding down a {adj}bassline"),
    "arpeggio": ("playing {adj}arpeggios", "arpeggiating chords"),
    "drums": ("keeping the groove", "driving the rhythm", "playing a steady groove"),
}
# {in_key}/{at_bpm} (" in A minor", " at 120 BPM"), {c_key}/{c_bpm} (", A minor") and the sentences are
# empty when the clip's key or BPM is withheld; frames that need a BPM or a key say so.
_FRAMES: tuple[tuple[str, str], ...] = (
    ("", "{Subject}{in_key}{at_bpm}{extras}."),
    ("", "{A_kind}{in_key}{at_bpm} featuring {subject}{extras}."),
    ("", "{Subject}{c_key}{c_bpm}{extras}."),
    ("bpm", "{Bpm} {kind}{in_key}: {subject}{extras}."),
    ("key|bpm", "Featuring {subject}, this {kind} sits{in_key}{at_bpm}{extras}."),
    ("", "{Subject}.{key_sentence}{bpm_sentence}{extras_sentence}"),
)


def _choice(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _an(word: str) -> str:
    vowel = word[:1].lower() in "aeiou" or word.startswith(("8", "11-", "18-", "11 ", "18 "))
    return ("an " if vowel else "a ") + word


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _name(inst: InstrumentFacts, rng: np.random.Generator) -> str:
    return _choice(rng, inst.display)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _key_text(facts: Facts, rng: np.random.Generator) -> str:
    assert facts.key is not None
    tonic, scale = facts.tonic or "", facts.scale or ""
    spelled = tonic.replace("#", " sharp").replace("b", " flat") if len(tonic) > 1 and rng.random() < 0.15 else tonic
    return f"{spelled} {scale}"


def _stem_notation(inst: InstrumentFacts) -> list[str]:
    tags = [inst.role.title()] if inst.role and inst.role != "drums" else []
    tags += [_SPEED_TAG[inst.speed]] if inst.speed in _SPEED_TAG else []
    tags += [_DENSITY_TAG[inst.density]] if inst.density in _DENSITY_TAG else []
    tags += [_CONTOUR_TAG[inst.contour]] if inst.contour in _CONTOUR_TAG else []
    tags += [f"{inst.pitch_register.title()} Register"] if inst.pitch_register else []
    return tags


def _notation_tags(facts: Facts) -> list[str]:
    if facts.kind == "stem":
        return _stem_notation(facts.instruments[0])
    roles = [i.role for i in facts.instruments if i.role and i.role != "drums"]
    return [r.title() for r in dict.fromkeys(roles)]


def tags_prompt(facts: Facts, rng: np.random.Generator) -> str:
    """Foundation-1 order: instruments, timbre, notation, FX, key, bars, BPM."""
    tags = [_name(i, rng) for i in facts.instruments]
    tags += [t.title() for t in facts.timbre]
    tags += _notation_tags(facts)
    tags += [f.title() for f in facts.fx]
    if facts.key:
        tags.append(facts.key)
    tags.append(f"{facts.bars} Bar" + ("s" if facts.bars != 1 else ""))
    if facts.bpm_text:
        tags.append(f"{facts.bpm_text} BPM")
    return ", ".join(tags)


def _apply_case(text: str, case: str) -> str:
    if case == "lower":
        return text.lower()
    if case == "upper":
        return text.upper()
    if case == "title":
        return " ".join(w[:1].upper() + w[1:] for w in text.split(" "))
    return text


def subset_prompt(facts: Facts, rng: np.random.Generator) -> str:
    """Stable Audio Open style: a shuffled random subset of the metadata, key: value or bare, case varied."""
    names = [_name(i, rng) for i in facts.instruments]
    names = [names[i] for i in rng.permutation(len(names))]
    label = "instruments" if len(names) > 1 else "instrument"
    # (field name, value as a pair, value when bare)
    required: list[tuple[str, str, str | None]] = [(label, ", ".join(names), ", ".join(names))]
    if facts.bpm_text:
        required.append(("bpm", facts.bpm_text, f"{facts.bpm_text} BPM"))
    if facts.key:
        required.append(("key", facts.key, facts.key))
    optional: list[tuple[str, str, str | None]] = [("bars", str(facts.bars), f"{facts.bars} bars")]
    if facts.time_signature:
        optional.append(("time signature", facts.time_signature, None))
    if facts.genres:
        optional.append(("genre", ", ".join(facts.genres), None))
    if facts.timbre:
        optional.append(("timbre", ", ".join(facts.timbre), None))
    notation = [t.lower() for t in _notation_tags(facts)]
    if notation:
        optional.append(("notation", ", ".join(notation), None))
    if facts.fx:
        optional.append(("fx", ", ".join(facts.fx), None))
    if facts.energy:
        optional.append(("energy", facts.energy, f"{facts.energy} energy"))
    chosen = required + [f for f in optional if rng.random() < SUBSET_FIELD_P]
    chosen = [chosen[i] for i in rng.permutation(len(chosen))]
    pairs = rng.random() < 0.5
    parts = [f"{name}: {value}" if pairs else (bare or value) for name, value, bare in chosen]
    case = CASES[int(rng.choice(len(CASES), p=CASE_P))]
    return _apply_case(", ".join(parts), case)


def _subject(facts: Facts, rng: np.random.Generator) -> str:
    phrases = []
    for inst in facts.instruments:
        name = _name(inst, rng)
        name = name if name.isupper() or name.startswith("TR") else name.lower()
        if inst.role in _ROLE_VERB and rng.random() < 0.6:
            adj = " ".join(w for w in (inst.speed if inst.speed != "moderate" else None, inst.contour) if w)
            verb = _choice(rng, _ROLE_VERB[inst.role]).replace("{adj}", adj + " " if adj else "")
            phrases.append(f"{name} {verb}")
        else:
            phrases.append(name)
    if len(phrases) == 1:
        return _an(phrases[0]) if rng.random() < 0.7 else phrases[0]
    return _join(phrases)


def _extras(facts: Facts, rng: np.random.Generator) -> list[str]:
    """A random selection of the optional facts as phrases (effects usually included: they are audible)."""
    options: dict[str, Callable[[], str]] = {}
    if facts.timbre:
        t = _join(list(facts.timbre))
        options["timbre"] = lambda: _choice(rng, (f"with a {t} sound", f"sounding {t}", f"{t} in tone"))
    if facts.genres:
        g = _join(facts.genres[:2])
        options["genre"] = lambda: _choice(rng, (f"in a {g} style", f"with a {g} feel"))
    if facts.fx:
        f = _join(facts.fx)
        options["fx"] = lambda: _choice(rng, (f"with {f}", f"treated with {f}"))
    bar_word = "bar" if facts.bars == 1 else "bars"
    loop = "loop" if facts.loopable else "phrase"
    options["bars"] = lambda: _choice(rng, (f"over {facts.bars} {bar_word}", _an(f"{facts.bars}-bar {loop}")))
    if facts.time_signature:
        options["meter"] = lambda: f"in {facts.time_signature} time"
    if facts.energy:
        options["energy"] = lambda: f"{facts.energy} energy"
    names = list(options)
    picked = sorted(rng.permutation(len(names))[: int(rng.integers(0, len(names) + 1))])
    chosen = [names[i] for i in picked]
    if "fx" in options and "fx" not in chosen and rng.random() < 0.8:
        chosen.append("fx")
    return [options[n]() for n in chosen]


def natural_prompt(facts: Facts, rng: np.random.Generator) -> str:
    """A varied sentence stating the instruments, key and BPM (those not withheld), with some of the other facts."""
    subject = _subject(facts, rng)
    bpm = None
    if facts.bpm_text:
        b = facts.bpm_text
        bpm = _choice(rng, (f"{b} BPM", f"{b} bpm", f"{b} beats per minute"))
    kind = _choice(rng, ("loop", "groove") if facts.loopable else ("track", "piece", "arrangement"))
    if facts.kind == "stem":
        kind = _choice(rng, ("solo loop", "loop") if facts.loopable else ("solo part", "solo phrase"))
    extras = _extras(facts, rng)
    key = None
    if facts.key:
        key = _key_text(facts, rng)
        key = _choice(rng, (key, f"the key of {key}"))
    have = {"key": key is not None, "bpm": bpm is not None, "": True}
    frames = [f for need, f in _FRAMES if any(have[n] for n in need.split("|"))]
    return _choice(rng, frames).format(
        Subject=_cap(subject),
        subject=subject,
        in_key=f" in {key}" if key else "",
        at_bpm=f" at {bpm}" if bpm else "",
        c_key=f", {key}" if key else "",
        c_bpm=f", {bpm}" if bpm else "",
        key_sentence=f" In {key}." if key else "",
        bpm_sentence=f" {_cap(bpm)}." if bpm else "",
        Bpm=_cap(bpm or ""),
        kind=kind,
        A_kind=_cap(_an(kind)),
        extras="".join(", " + e for e in extras),
        extras_sentence="".join(" " + _cap(e) + "." for e in extras),
    )


WRITERS: dict[str, Callable[[Facts, np.random.Generator], str]] = {
    "natural": natural_prompt,
    "tags": tags_prompt,
    "subset": subset_prompt,
}


def template_prompt(style: PromptStyle, facts: Facts, rng: np.random.Generator) -> str:
    return WRITERS[style](facts, rng)
