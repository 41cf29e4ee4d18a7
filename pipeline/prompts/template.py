"""Prompts written without a model, in the three styles of the anchors.

- `tags` (Foundation-1): an ordered tag list: instruments, timbre, notation, FX, then
  key, bars and BPM (a withheld key or BPM left out) ("Electric Piano, Warm, Bright,
  Chord Progression, Medium Reverb, A minor, 8 Bars, 120 BPM").
- `subset` (Stable Audio Open): a random subset of the metadata in shuffled order,
  half of the prompts as "key: value" pairs and half bare values, with the case of the
  whole prompt varied. Instruments, key and BPM are always in when the clip has them
  (the validator requires them); the other fields each come with probability SUBSET_FIELD_P.
- `natural`: a sentence from varied frames and phrasings (the LLM's stand-in with the
  `template` backend, and its fallback).

Instruments that read the same (two "Electric Guitar (jazz)" tracks; a jazz and a clean
guitar both shown as "Clean Electric Guitar") are named once, in sentences with their
count ("two clean electric guitars"). A style's full form can exceed the validator's
MAX_WORDS (a clip of 10+ instruments); `template_prompt` then falls back through
shorter forms (LEVELS): names without what each part plays, then the ensemble by
family ("a full band of strings, brass, piano, bass and drums"), then without the
optional facts (timbre, notation, energy; at last effects and all but one genre).
Key, BPM and bars stay in every form (as do the meter and genre where the style states
them), so a template prompt always fits and never drops a required fact.

Every choice comes from the `rng` the caller seeds per clip, so a clip's template
prompt is the same whichever backend runs and whether it is a fallback or not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.prompts import vocab
from pipeline.prompts.attributes import Facts, InstrumentFacts
from pipeline.prompts.validate import MAX_WORDS
from pipeline.records import PromptStyle

SUBSET_FIELD_P = 0.5
CASES: tuple[str, ...] = ("lower", "title", "upper", "as-is")
CASE_P: tuple[float, ...] = (0.4, 0.2, 0.1, 0.3)

# Forms from longest to shortest; template_prompt takes the first that fits MAX_WORDS.
LEVELS: tuple[str, ...] = ("full", "names", "ensemble", "essential", "minimal")
FULL, NAMES, ENSEMBLE, ESSENTIAL, MINIMAL = range(len(LEVELS))

_CONTOUR_TAG = {"rising": "Rising", "falling": "Falling", "arch": "Arch Contour", "valley": "Valley Contour",
                "static": "Static", "wavy": "Wavy"}  # fmt: skip
_SPEED_TAG = {"fast": "Fast", "slow": "Slow", "moderate": "Medium Speed"}
_DENSITY_TAG = {"dense": "Dense", "sparse": "Sparse"}
# "^" marks the noun phrase that takes "a"/"an" (chosen for the word that follows: "an arch melody").
_ROLE_VERB = {
    "chord progression": ("playing ^chord progression", "comping chords", "playing chords"),
    "sustained chords": ("holding sustained chords", "playing long held chords"),
    "melody": ("playing ^{adj}melody", "carrying ^{adj}melody"),
    "bassline": ("playing ^{adj}bassline", "holding down ^{adj}bassline"),
    "arpeggio": ("playing {adj}arpeggios", "arpeggiating chords"),
    "drums": ("keeping the groove", "driving the rhythm", "playing ^steady groove"),
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
_ENSEMBLE_FRAMES = ("a full band of {g}", "an ensemble of {g}", "{g}")

# Ensemble groups: each label is an accepted term of every member (vocab.instrument_terms).
_FAMILY_GROUP = {
    "Piano": "piano", "Chromatic Percussion": "chromatic percussion", "Organ": "organ", "Guitar": "guitar",
    "Bass": "bass", "Strings": "strings", "Brass": "brass", "Reed": "woodwind", "Pipe": "woodwind",
    "Synth Lead": "synth", "Synth Pad": "synth", "Synth Effects": "synth", "Ethnic": "ethnic instrument",
    "Percussive": "percussion", "Sound Effects": "sound effect", "Drums": "drums",
}  # fmt: skip
_SUBFAMILY_GROUP = {"string ensemble": "strings", "synth strings": "strings", "choir": "choir"}
_GROUP_PLURAL = {
    "piano": "pianos", "organ": "organs", "guitar": "guitars", "bass": "basses", "woodwind": "woodwinds",
    "synth": "synths", "ethnic instrument": "ethnic instruments", "sound effect": "sound effects",
}  # fmt: skip
_PIANOS = frozenset({"acoustic piano", "electric piano"})  # a Piano-family group with others is "keys"

# Names that have no countable plural: named once, without a count.
_UNCOUNTED = frozenset(
    {"drums", "strings", "brass", "fx", "harmonics", "oohs", "aahs", "bells", "noise", "applause", "seashore"}
)
_COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}

# Effect labels as sentences write them; 'Wet' and 'Dry' (vocab.WET_DRY) are not effects.
_FX_PHRASE = {"bitcrushed": "a bitcrusher", "phaser": "a phaser", "flanger": "a flanger",
              "low-pass filter": "a low-pass filter"}  # fmt: skip
_DRY_PHRASES = ("completely dry", "with no effects", "dry and unprocessed")

# Words that begin with a vowel letter but a consonant sound, and the reverse.
_A_BEFORE = ("uni", "use", "usu", "uk", "eu", "one", "once")
_AN_BEFORE = ("hour", "honest", "heir", "sfx", "fx", "fm ", "mp3", "edm", "r&b", "rnb")
_DIGITS_RE = re.compile(r"\d+")


def _choice(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _an(phrase: str) -> str:
    """`phrase` with the indefinite article its first sound takes: "an arch melody", "an 8-bar loop",
    "a 16-bar phrase", "an 80s feel", "a unison line", "an SFX Drum Kit", "a TR-808 Drum Kit"."""
    low = phrase.lower()
    first = phrase.split()[0] if phrase.split() else ""
    letters = re.split(r"[^a-z]", first.lower())[0]
    if first[:1].isdigit():
        digits = _DIGITS_RE.match(first).group(0)  # type: ignore[union-attr]
        vowel = digits.startswith("8") or (len(digits) in (2, 5) and digits[:2] in ("11", "18"))
    elif first.isupper() and len(letters) > 1:  # an acronym, read letter by letter
        vowel = letters[0] in "aefhilmnorsx"
    else:
        vowel = (low[:1] in "aeiou" and not low.startswith(_A_BEFORE)) or low.startswith(_AN_BEFORE)
    return ("an " if vowel else "a ") + phrase


def _articles(text: str) -> str:
    """Resolve a "^" marker: the rest of the phrase after it takes its article."""
    if "^" not in text:
        return text
    head, tail = text.split("^", 1)
    return head + _an(tail)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lower(name: str) -> str:
    return name if name.isupper() or name.startswith("TR") else name.lower()


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _plural(name: str) -> str | None:
    """ "clean electric guitar" -> "clean electric guitars"; None for names without a countable plural."""
    words = name.split()
    last = words[-1]
    low = last.lower()
    if low in _UNCOUNTED or (low.endswith("s") and not low.endswith("ss")):
        return None
    suffix = "es" if low.endswith(("ss", "sh", "ch", "x")) else "s"
    return " ".join([*words[:-1], last + (suffix.upper() if last.isupper() else suffix)])


def _counted(name: str, n: int) -> str:
    """A name for `n` instruments that read the same: "two clean electric guitars" (or the name once)."""
    plural = _plural(name) if n > 1 else None
    return f"{_COUNT_WORDS.get(n, str(n))} {plural}" if plural else name


@dataclass(frozen=True)
class _Part:
    """Instruments named alike: one GM name (or several shown the same way) and its display name."""

    name: str
    members: tuple[InstrumentFacts, ...]


def _parts(facts: Facts, rng: np.random.Generator) -> list[_Part]:
    """The instruments as named: one display name drawn per set of alike instruments (same display names);
    names that still read the same merged."""
    alike: dict[tuple[str, ...], list[InstrumentFacts]] = {}  # same display names: a jazz and a clean guitar
    for inst in facts.instruments:
        alike.setdefault(inst.display, []).append(inst)
    merged: dict[str, tuple[str, list[InstrumentFacts]]] = {}
    for members in alike.values():
        shown = _choice(rng, members[0].display)
        merged.setdefault(shown.lower(), (shown, []))[1].extend(members)
    return [_Part(shown, tuple(members)) for shown, members in merged.values()]


def _group_id(inst: InstrumentFacts) -> str:
    return _SUBFAMILY_GROUP.get(inst.subfamily) or _FAMILY_GROUP.get(inst.family) or inst.name


def _ensemble(parts: list[_Part]) -> list[tuple[str, int, bool]]:
    """The parts grouped by family: (name, number of instruments, is a family label), in order of first
    appearance. A family with one kind of instrument keeps its name ("trumpet"); others get the family's
    label ("brass", "synths", "keys")."""
    groups: dict[str, list[_Part]] = {}
    for p in parts:
        groups.setdefault(_group_id(p.members[0]), []).append(p)
    out = []
    for gid, ps in groups.items():
        n = sum(len(p.members) for p in ps)
        if len(ps) == 1:
            out.append((ps[0].name, n, False))
            continue
        label = gid
        if gid == "piano" and any(m.subfamily not in _PIANOS for p in ps for m in p.members):
            label = "keys"
        out.append((_GROUP_PLURAL.get(label, label), n, True))
    return out


def _tag_names(facts: Facts, parts: list[_Part], level: int) -> list[str]:
    """Instrument names for a list (tags, subset): each part once, or the ensemble's family labels."""
    if level >= ENSEMBLE and len(parts) > 1:
        return [name.title() if label else name for name, _, label in _ensemble(parts)]
    return [p.name for p in parts]


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


def _genres(facts: Facts, level: int) -> list[str]:
    return facts.genres if level < ESSENTIAL else facts.genres[: 2 if level == ESSENTIAL else 1]


def tags_prompt(facts: Facts, rng: np.random.Generator, level: int = FULL) -> str:
    """Foundation-1 order: instruments, timbre, notation, FX, key, bars, BPM."""
    tags = _tag_names(facts, _parts(facts, rng), level)
    if level < ESSENTIAL:
        tags += [t.title() for t in facts.timbre]
        tags += _notation_tags(facts)
    if level < MINIMAL:
        tags += [f.title() for f in facts.fx]
    if facts.key:
        tags.append(facts.key)
    if facts.bars is not None:
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


def subset_prompt(facts: Facts, rng: np.random.Generator, level: int = FULL) -> str:
    """Stable Audio Open style: a shuffled random subset of the metadata, key: value or bare, case varied.
    From ESSENTIAL on, the optional fields left (bars, meter, genre; FX but in MINIMAL) all come."""
    names = _tag_names(facts, _parts(facts, rng), level)
    names = [names[i] for i in rng.permutation(len(names))]
    label = "instruments" if len(facts.instruments) > 1 else "instrument"
    # (field name, value as a pair, value when bare)
    required: list[tuple[str, str, str | None]] = [(label, ", ".join(names), ", ".join(names))]
    if facts.bpm_text:
        required.append(("bpm", facts.bpm_text, f"{facts.bpm_text} BPM"))
    if facts.key:
        required.append(("key", facts.key, facts.key))
    optional: list[tuple[str, str, str | None]] = []
    if facts.bars is not None:
        optional.append(("bars", str(facts.bars), f"{facts.bars} bars"))
    if facts.time_signature:
        optional.append(("time signature", facts.time_signature, None))
    if facts.genres:
        optional.append(("genre", ", ".join(_genres(facts, level)), None))
    if facts.timbre and level < ESSENTIAL:
        optional.append(("timbre", ", ".join(facts.timbre), None))
    notation = [t.lower() for t in _notation_tags(facts)] if level < ESSENTIAL else []
    if notation:
        optional.append(("notation", ", ".join(notation), None))
    if facts.fx and level < MINIMAL:
        optional.append(("fx", ", ".join(facts.fx), None))
    if facts.energy and level < ESSENTIAL:
        optional.append(("energy", facts.energy, f"{facts.energy} energy"))
    chosen = required + (optional if level >= ESSENTIAL else [f for f in optional if rng.random() < SUBSET_FIELD_P])
    chosen = [chosen[i] for i in rng.permutation(len(chosen))]
    pairs = rng.random() < 0.5
    parts = [f"{name}: {value}" if pairs else (bare or value) for name, value, bare in chosen]
    case = CASES[int(rng.choice(len(CASES), p=CASE_P))]
    return _apply_case(", ".join(parts), case)


def _subject(facts: Facts, parts: list[_Part], rng: np.random.Generator, level: int) -> str:
    if level >= ENSEMBLE and len(parts) > 1:
        groups = [name if label else _counted(_lower(name), n) for name, n, label in _ensemble(parts)]
        return _choice(rng, _ENSEMBLE_FRAMES).format(g=_join(groups))
    phrases = []
    for part in parts:
        name, inst = _lower(part.name), part.members[0]
        if len(part.members) > 1:
            phrases.append(_counted(name, len(part.members)))
        elif level < NAMES and inst.role in _ROLE_VERB and rng.random() < 0.6:
            adj = " ".join(w for w in (inst.speed if inst.speed != "moderate" else None, inst.contour) if w)
            verb = _choice(rng, _ROLE_VERB[inst.role]).replace("{adj}", adj + " " if adj else "")
            phrases.append(f"{name} {_articles(verb)}")
        else:
            phrases.append(name)
    if len(phrases) == 1 and len(parts[0].members) == 1:
        return _an(phrases[0]) if rng.random() < 0.7 else phrases[0]
    return _join(phrases)


def _fx_phrase(label: str) -> str:
    low = label.lower()
    return _FX_PHRASE.get(low, low)


def _extras(facts: Facts, rng: np.random.Generator, level: int) -> list[str]:
    """A random selection of the optional facts as phrases (effects usually included: they are audible).
    From ESSENTIAL on: every fact left (genre, effects but in MINIMAL, bars, meter)."""
    options: dict[str, Callable[[], str]] = {}
    if facts.timbre and level < ESSENTIAL:
        t = _join(list(facts.timbre))
        options["timbre"] = lambda: _choice(rng, ("with " + _an(f"{t} sound"), f"sounding {t}", f"{t} in tone"))
    if facts.genres:
        g = _join(_genres(facts, level)[:2])
        options["genre"] = lambda: _choice(rng, ("in " + _an(f"{g} style"), "with " + _an(f"{g} feel")))
    effects = vocab.effect_labels(facts.fx)
    if effects and level < MINIMAL:
        f = _join([_fx_phrase(e) for e in effects])
        options["fx"] = lambda: _choice(rng, (f"with {f}", f"treated with {f}"))
    elif facts.fx and level < MINIMAL:  # only 'Dry' (or 'Wet') labels: say it is dry, never "with Dry"
        dry = any(x.lower() == "dry" for x in facts.fx)
        if dry:
            options["fx"] = lambda: _choice(rng, _DRY_PHRASES)
    if facts.bars is not None:
        bar_word = "bar" if facts.bars == 1 else "bars"
        loop = "loop" if facts.loopable else "phrase"
        options["bars"] = lambda: _choice(rng, (f"over {facts.bars} {bar_word}", _an(f"{facts.bars}-bar {loop}")))
    if facts.time_signature:
        options["meter"] = lambda: f"in {facts.time_signature} time"
    if facts.energy and level < ESSENTIAL:
        options["energy"] = lambda: f"{facts.energy} energy"
    names = list(options)
    if level >= ESSENTIAL:
        return [options[n]() for n in names]
    picked = sorted(rng.permutation(len(names))[: int(rng.integers(0, len(names) + 1))])
    chosen = [names[i] for i in picked]
    if "fx" in options and "fx" not in chosen and rng.random() < 0.8:
        chosen.append("fx")
    return [options[n]() for n in chosen]


def natural_prompt(facts: Facts, rng: np.random.Generator, level: int = FULL) -> str:
    """A varied sentence stating the instruments, key and BPM (those not withheld), with some of the other facts."""
    subject = _subject(facts, _parts(facts, rng), rng, level)
    bpm = None
    if facts.bpm_text:
        b = facts.bpm_text
        bpm = _choice(rng, (f"{b} BPM", f"{b} bpm", f"{b} beats per minute"))
    kind = _choice(rng, ("loop", "groove") if facts.loopable else ("track", "piece", "arrangement"))
    if facts.kind == "stem":
        kind = _choice(rng, ("solo loop", "loop") if facts.loopable else ("solo part", "solo phrase"))
    extras = _extras(facts, rng, level)
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
        c_key=(", in " if key.startswith("the ") else ", ") + key if key else "",
        c_bpm=f", {bpm}" if bpm else "",
        key_sentence=f" In {key}." if key else "",
        bpm_sentence=f" {_cap(bpm)}." if bpm else "",
        Bpm=_cap(bpm or ""),
        kind=kind,
        A_kind=_cap(_an(kind)),
        extras="".join(", " + e for e in extras),
        extras_sentence="".join(" " + _cap(e) + "." for e in extras),
    )


WRITERS: dict[str, Callable[[Facts, np.random.Generator, int], str]] = {
    "natural": natural_prompt,
    "tags": tags_prompt,
    "subset": subset_prompt,
}


def n_words(text: str) -> int:
    """Words as the validator counts them."""
    return len(text.split())


def template_form(style: PromptStyle, facts: Facts, rng: np.random.Generator) -> tuple[str, int]:
    """The style's prompt in the fullest of its forms (LEVELS) that fits MAX_WORDS, and that form's level.
    Each form is drawn from the same rng state, so the result depends only on the clip's rng."""
    state = rng.bit_generator.state
    text, level = "", FULL
    for level in range(len(LEVELS)):
        rng.bit_generator.state = state
        text = WRITERS[style](facts, rng, level)
        if n_words(text) <= MAX_WORDS:
            break
    return text, level


def template_prompt(style: PromptStyle, facts: Facts, rng: np.random.Generator) -> str:
    return template_form(style, facts, rng)[0]
