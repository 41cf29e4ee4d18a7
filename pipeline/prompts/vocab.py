"""The words prompts use for instruments, keys and numbers, and how to find them in text.

The template writer, the validator and the attribute builder share this module so
that what one writes the other reads the same way. Text is matched in lower case
with hyphens and brackets read as spaces ("sixteen-bar" = "sixteen bar",
"Lead 2 (sawtooth)" = "lead 2 sawtooth"); commas and full stops stay, so a term never
spans two list items.

Instruments have two word sets:

- accepted terms (`instrument_terms`): any of them names the instrument: its GM
  name, word-suffixes of it ("grand piano", "piano"), its sub-family and family,
  the display names the templates use, and synonyms ("keys", "sax", "drum kit").
- lie terms (`LIE_TERMS`): words that always name an instrument. A prompt may use
  one only when some instrument of the clip accepts it (after dropping leading
  timbre/genre/effect words: "bright acoustic piano" is an acoustic piano that
  sounds bright). Words that also mean something else ("lead", "beat", "kit",
  "ensemble", "percussive") are accepted but never lies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from pipeline.analysis.timbre import TIMBRE_TAGS
from pipeline.midi import gm

DRUMS = "Drums"

# Word-suffixes too generic to name an instrument on their own ("hit", "noise", ...).
_GENERIC = frozenset({"drum", "drums", "box", "hit", "noise", "ooh", "aah", "ring", "tweet", "section", "effect", "fx"})
# Accepted-only words: they name an instrument but also mean other things.
_AMBIGUOUS = frozenset(
    {"lead", "beat", "kit", "ensemble", "percussive", "reed", "pipe", "ethnic", "mallets", "bottle", "fifth"}
)

_SUBFAMILY_SYNONYMS: dict[str, tuple[str, ...]] = {
    "acoustic piano": ("piano", "keys"),
    "electric piano": ("piano", "keys", "e piano", "rhodes"),
    "harpsichord": ("keys",),
    "clavinet": ("clav", "keys"),
    "bells": ("bells", "chimes"),
    "mallets": ("mallets",),
    "electric organ": ("organ", "keys", "hammond", "hammond organ"),
    "pipe organ": ("organ",),
    "reed organ": ("organ", "harmonium"),
    "acoustic guitar": ("guitar",),
    "clean electric guitar": ("guitar", "clean guitar"),
    "distorted electric guitar": ("electric guitar", "distorted guitar", "overdriven guitar", "distortion guitar"),
    "guitar harmonics": ("guitar",),
    "acoustic bass": ("bass", "upright bass", "double bass"),
    "electric bass": ("bass", "bass guitar"),
    "slap bass": ("bass", "bass guitar", "electric bass"),
    "synth bass": ("bass", "synth", "bass synth"),
    "solo strings": ("strings",),
    "tremolo strings": ("strings",),
    "pizzicato strings": ("strings",),
    "string ensemble": ("strings", "string section", "orchestral strings"),
    "synth strings": ("strings", "synth", "string synth"),
    "choir": ("choir", "voices", "vocals", "vocal", "voice"),
    "trumpet": ("brass",),
    "muted trumpet": ("trumpet", "brass"),
    "trombone": ("brass",),
    "tuba": ("brass",),
    "french horn": ("horn", "brass"),
    "brass section": ("brass", "horns", "horn section"),
    "synth brass": ("brass", "synth"),
    "saxophone": ("sax", "woodwind"),
    "double reed": ("woodwind",),
    "clarinet": ("woodwind",),
    "flute": ("flute", "woodwind"),
    "pitched percussion": ("percussion",),
}
_FAMILY_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Synth Lead": ("synth", "lead", "synth lead", "lead synth"),
    "Synth Pad": ("synth", "pad", "synth pad"),
    "Synth Effects": ("synth",),
    "Reed": ("woodwind",),
    "Pipe": ("woodwind",),
}
_NAME_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Contrabass": ("double bass", "upright bass", "bass"),
    "Violin": ("fiddle",),
    "Fiddle": ("violin",),
    "Pan Flute": ("panpipes", "pan pipes"),
    "Steel Drums": ("steel pan",),
    "Lead 1 (square)": ("square wave lead", "square synth"),
    "Lead 2 (sawtooth)": ("saw lead", "saw synth", "sawtooth synth"),
}
_DRUM_TERMS = (
    "drums", "drum", "drum kit", "kit", "beat", "percussion", "drum machine", "snare", "kick", "kick drum", "hi hat",
    "hihat", "cymbal", "toms",
)  # fmt: skip
_QUALIFIER_OVERRIDES = {"bass + lead": "layered"}  # GM 87: a layered lead; "bass" alone would read as a bass

# Instrument words that always name an instrument (plus every multi-word GM term, see LIE_TERMS).
_CURATED_LIES = (
    "piano", "keys", "rhodes", "organ", "harpsichord", "clav", "celesta", "glockenspiel", "vibraphone", "marimba",
    "xylophone", "bells", "chimes", "dulcimer", "accordion", "harmonica", "guitar", "bass", "violin", "viola",
    "cello", "contrabass", "harp", "timpani", "strings", "choir", "vocals", "vocal", "voice", "voices", "singer",
    "singing", "vocalist", "trumpet", "trombone", "tuba", "horn", "horns", "brass", "sax", "saxophone", "oboe",
    "bassoon", "clarinet", "flute", "piccolo", "recorder", "ocarina", "whistle", "woodwind", "synth",
    "synthesizer", "synthesiser", "pad", "drums", "drum", "percussion", "snare", "hi hat", "hihat", "cymbal",
    "toms", "sitar", "banjo", "shamisen", "koto", "kalimba", "bagpipe", "fiddle", "shanai", "ukulele", "mandolin",
    "harmonium", "hammond",
)  # fmt: skip
# Lie terms that are fine as part of a description of sound rather than an instrument.
_NOT_LIES = frozenset({"sound effect", "synth effects", "sound effects", "chromatic percussion"})

# Negative look-aheads for words that name an instrument only in some contexts.
_CONTEXT = {
    "beat": r"(?!\s+(?:per|a)\s+minute)",
    "bass": r"(?!\s*(?:heavy|line|lines|frequenc\w*|register|end|range|notes?|tones?|response|boost))",
}

_NAME_RE = re.compile(r"^(Lead|Pad|FX) \d+ \(?([^)]*)\)?$")
_PARENS_RE = re.compile(r"\s*\(([^)]*)\)")
_SPACES_RE = re.compile(r"\s+")
_SEPARATORS_RE = re.compile(r"[-_()+/\"&]")


def normalise(text: str) -> str:
    """Lower case, hyphens/brackets/slashes as spaces, single spaces."""
    return _SPACES_RE.sub(" ", _SEPARATORS_RE.sub(" ", text.lower())).strip()


def _suffixes(phrase: str) -> list[str]:
    words = phrase.split()
    return [" ".join(words[i:]) for i in range(len(words))]


def name_parts(name: str) -> tuple[str, str | None]:
    """(base, qualifier) of a GM name: "Lead 2 (sawtooth)" -> ("Lead", "sawtooth"), "Electric Piano 1" ->
    ("Electric Piano", None), "Electric Guitar (jazz)" -> ("Electric Guitar", "jazz")."""
    m = _NAME_RE.match(name)
    if m:
        base, qual = m.group(1), m.group(2)
    else:
        found = _PARENS_RE.search(name)
        qual = found.group(1) if found else None
        base = _PARENS_RE.sub("", name)
    base = " ".join(w for w in base.split() if not w.isdigit())
    if qual is not None:
        qual = _QUALIFIER_OVERRIDES.get(qual, qual)
    return base, qual


def display_names(name: str, subfamily: str, is_drum: bool) -> tuple[str, ...]:
    """How templates write an instrument: its cleaned GM name first, then alternatives."""
    if is_drum:
        kit = name.removesuffix(" Drum Kit")
        return ("Drums", "Drum Kit") if kit == "Standard" else (name, "Drums", "Drum Kit")
    base, qual = name_parts(name)
    if base in ("Lead", "Pad", "FX"):
        first = f"{qual.title()} {base}" if qual else base
        synth = {"Lead": "Synth Lead", "Pad": "Synth Pad", "FX": "Synth FX"}[base]
        return (first, synth)
    names = [base]
    sub = subfamily.title()
    if normalise(sub) != normalise(base) and sub.split()[-1] in base.split():
        names.append(sub)  # "Clean Electric Guitar" for "Electric Guitar (jazz)"; not "Bells" for "Celesta"
    return tuple(names)


@lru_cache(maxsize=1024)
def instrument_terms(name: str, family: str, subfamily: str, is_drum: bool) -> frozenset[str]:
    """Every normalised phrase that names this instrument (singular forms)."""
    terms: set[str] = {normalise(name)}
    terms.update(normalise(d) for d in display_names(name, subfamily, is_drum))
    if is_drum:
        terms.update(_DRUM_TERMS)
        terms.update(_suffixes(normalise(name)))
        return frozenset(singular(t) for t in terms)
    base, qual = name_parts(name)
    nb = normalise(base)
    found = set(_suffixes(nb))
    for group in (normalise(subfamily), normalise(family)):
        found.update({group, group.split()[-1]})
    if qual:
        nq = normalise(qual)
        found.update({f"{nq} {nb}", f"{nq} {nb.split()[-1]}"})
    terms.update(singular(t) for t in found if singular(t) not in _GENERIC)
    terms.update(_SUBFAMILY_SYNONYMS.get(subfamily, ()))
    terms.update(_FAMILY_SYNONYMS.get(family, ()))
    terms.update(_NAME_SYNONYMS.get(name, ()))
    if "synth" in normalise(f"{name} {subfamily} {family}").split():
        terms.add("synth")
    return frozenset(singular(t) for t in terms if t)


_KEEP_PLURAL = frozenset(
    {"drums", "strings", "keys", "bells", "chimes", "vocals", "voices", "horns", "toms", "mallets", "rhodes"}
)


def singular(term: str) -> str:
    """A term's last word in the singular the term sets hold ("guitars" -> "guitar"; "drums" stays)."""
    words = term.split()
    if not words:
        return term
    last = words[-1]
    if last in _KEEP_PLURAL or last.endswith("ss") or last.endswith("us") or not last.endswith("s"):
        return term
    last = last[:-2] if last.endswith(("sses", "ches", "shes")) else last[:-1]
    return " ".join([*words[:-1], last])


def _all_gm() -> list[tuple[str, str, str, bool]]:
    out = [(gm.instrument_name(p), gm.family(p), gm.subfamily(p), False) for p in range(128)]
    out += [(gm.instrument_name(k, True), DRUMS, "drum kit", True) for k in (0, 8, 16, 24, 25, 32, 40, 48, 56)]
    return out


@lru_cache(maxsize=1)
def lie_terms() -> frozenset[str]:
    """Words that always name an instrument: the curated list, every multi-word GM term and every
    one-word GM name ("Celesta", "Helicopter")."""
    terms = {singular(t) for t in _CURATED_LIES}
    for name, family, subfamily, is_drum in _all_gm():
        for t in instrument_terms(name, family, subfamily, is_drum):
            if " " in t:
                terms.add(t)
        base = normalise(name_parts(name)[0])
        if " " not in base and base not in _AMBIGUOUS and base not in _GENERIC and base not in ("pad",):
            terms.add(singular(base))
    return frozenset(terms - _NOT_LIES)


def _term_pattern(term: str) -> str:
    words = [re.escape(w) for w in term.split()]
    last = words[-1]
    words[-1] = last + (r"(?:es)?" if term.endswith("ss") else r"(?:es|s)?" if not term.endswith("s") else "")
    return r"\s+".join(words) + _CONTEXT.get(term, "")


def terms_regex(terms: Iterable[str]) -> re.Pattern[str]:
    """One pattern matching any of `terms` (longest first, plural allowed), on word boundaries."""
    ordered = sorted(set(terms), key=lambda t: (-len(t.split()), -len(t), t))
    body = "|".join(_term_pattern(t) for t in ordered)
    return re.compile(rf"(?<![a-z0-9#])(?:{body})(?![a-z0-9])")


@lru_cache(maxsize=1)
def lie_regex() -> re.Pattern[str]:
    return terms_regex(lie_terms())


@lru_cache(maxsize=4096)
def accepted_regex(terms: frozenset[str]) -> re.Pattern[str]:
    return terms_regex(terms)


def canonical(matched: str) -> str:
    """The term set entry a regex match stands for ("Drum-Kits" -> "drum kit")."""
    return singular(normalise(matched))


def modifiers(extra: Iterable[str] = ()) -> frozenset[str]:
    """Words that describe how an instrument sounds and may precede its name without changing it."""
    words = {w for t in TIMBRE_TAGS for w in normalise(t).split()}
    words.update({"percussive", "rock", "jazz", "tango", "soft", "heavy", "punchy"})
    words.update(w for e in extra for w in normalise(e).split())
    return frozenset(words)


# ---- keys ----

_NATURAL_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_ACCIDENTAL = {"#": 1, "♯": 1, "sharp": 1, "b": -1, "♭": -1, "flat": -1}
_TONIC = r"(?<![\w#♯♭])([a-g])(?:\s*(#|♯|sharp\b|♭|flat\b|b(?![a-z])))?"
KEY_RE = re.compile(_TONIC + r"\s*(major|minor|maj|min)(?![a-z])")
SHORT_KEY_RE = re.compile(r"(?<![\w#♯♭])([A-G])(#|♯|b|♭)?m(?![A-Za-z])")  # "F#m", on the original text only
KEY_OF_RE = re.compile(r"\bkey(?:\s+of|\s+is|\s*[:=])?\s*(?:the\s+)?" + _TONIC + r"(?![a-z0-9])")
SCALE_RE = re.compile(r"(?<![a-z])(major|minor)(?![a-z])")


def tonic_pc(letter: str, accidental: str | None) -> int:
    return (_NATURAL_PC[letter.lower()] + _ACCIDENTAL.get((accidental or "").lower().strip(), 0)) % 12


def scale_of(word: str) -> str:
    return "major" if word.lower().startswith("maj") else "minor"


def key_text_lower(text: str) -> str:
    """Lower case with hyphens as spaces ("F-sharp minor" -> "f sharp minor"), keeping '#' and '/'."""
    return _SPACES_RE.sub(" ", text.lower().replace("-", " "))


# ---- numbers ----

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_WORD = "|".join([*_UNITS, *_TENS, "hundred", "thousand"])
_NUMBER_WORDS_RE = re.compile(rf"\b(?:{_WORD})(?:(?:\s+and)?[\s-]+(?:{_WORD}))*\b")
_UNIT_AFTER_RE = re.compile(r"[\s-]*(?:bars?|measures?|beats?|bpm)\b")
NUMBER_RE = re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?!\d)")


def _words_value(words: list[str]) -> int:
    total, current = 0, 0
    for w in words:
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "hundred":
            current = (current or 1) * 100
        elif w == "thousand":
            total += (current or 1) * 1000
            current = 0
    return total + current


def digits_for_words(text: str) -> str:
    """Number words as digits: "eight bars" -> "8 bars", "one hundred and twenty BPM" -> "120 BPM".

    A lone "one" is a number only before a unit ("one bar"); elsewhere it is a pronoun ("a warm one")."""

    def repl(m: re.Match[str]) -> str:
        words = [w for w in re.split(r"[\s-]+", m.group(0).lower()) if w != "and"]
        if words == ["one"] and not _UNIT_AFTER_RE.match(text, m.end()):
            return m.group(0)
        return str(_words_value(words))

    return _NUMBER_WORDS_RE.sub(repl, text)


def numbers_in(text: str) -> list[float]:
    return [float(x) for x in NUMBER_RE.findall(text)]


# ---- effects ----

# Effect word -> the roots of fx labels that make it true.
FX_WORDS: dict[str, tuple[str, ...]] = {
    "reverb": ("reverb",),
    "reverberant": ("reverb",),
    "reverberation": ("reverb",),
    "delay": ("delay", "echo"),
    "echo": ("delay", "echo"),
    "echoes": ("delay", "echo"),
    "distortion": ("distort", "overdrive"),
    "distorted": ("distort", "overdrive"),
    "overdrive": ("distort", "overdrive"),
    "overdriven": ("distort", "overdrive"),
    "phaser": ("phaser",),
    "flanger": ("flanger",),
    "bitcrush": ("bitcrush",),
    "bitcrushed": ("bitcrush",),
    "bitcrusher": ("bitcrush",),
    "chorus effect": ("chorus",),
}
FX_RE = re.compile(r"(?<![a-z])(" + "|".join(sorted(FX_WORDS, key=len, reverse=True)) + r")(?![a-z])")

# Foundation-1's 'Wet'/'Dry' labels say whether a variant has effects; they name no effect.
WET_DRY = frozenset({"wet", "dry"})


def effect_labels(fx: Iterable[str]) -> list[str]:
    """The labels of `fx` that name an effect (not 'Wet' or 'Dry')."""
    return [f for f in fx if f.strip().lower() not in WET_DRY]


# ---- genres and moods ----

# Words that name a genre or a style of music. A prompt may use one only when the clip's genre tags
# hold it (vocab.style_allowed): the clip's own tags, not what the instruments suggest. Instrument
# names that contain one ("Jazz Guitar", "Rock Organ", "New Age Pad", "Electronic Drum Kit") are
# masked by the validator when the clip has that instrument.
GENRE_WORDS: tuple[str, ...] = (
    "jazz", "jazzy", "bebop", "swing", "big band", "fusion", "blues", "bluesy", "rock", "rockabilly", "punk",
    "punky", "metal", "grunge", "emo", "hardcore", "indie", "shoegaze", "new wave", "pop", "poppy", "synthpop",
    "hip hop", "hiphop", "trip hop", "rap", "trap", "r b", "rnb", "soul", "soulful", "funk", "funky", "disco",
    "motown", "gospel", "doo wop", "reggae", "reggaeton", "ska", "dub", "dancehall", "afrobeat", "afrobeats",
    "latin", "salsa", "samba", "bossa nova", "tango", "flamenco", "cumbia", "country", "bluegrass", "folk",
    "folky", "celtic", "classical", "baroque", "opera", "electronic", "electronica", "electro", "edm", "techno",
    "house", "trance", "dubstep", "dnb", "jungle", "breakbeat", "garage", "grime", "idm", "industrial",
    "ambient", "downtempo", "chillout", "chillwave", "lo fi", "lofi", "synthwave", "vaporwave", "new age",
    "chiptune", "video game", "soundtrack", "world music", "experimental", "dance", "ragtime", "polka",
)  # fmt: skip
# Mood words (the timbre adjectives, measured from audio, are not moods; nor are tone words like "mellow").
_MOODS = (
    "happy", "sad", "melancholic", "melancholy", "uplifting", "joyful", "joyous", "cheerful", "upbeat",
    "hopeful", "nostalgic", "romantic", "dreamy", "chill", "chilled", "relaxed", "relaxing", "calm",
    "peaceful", "serene", "tranquil", "soothing", "aggressive", "angry", "epic", "emotional",
    "sentimental", "somber", "sombre", "gloomy", "moody", "eerie", "spooky", "creepy", "haunting",
    "mysterious", "ominous", "menacing", "sinister", "brooding", "triumphant", "heroic", "tense",
    "suspenseful", "playful", "whimsical", "sexy", "sensual", "lonely", "depressing", "dramatic", "majestic",
    "festive", "bittersweet", "euphoric", "wistful",
)  # fmt: skip
MOOD_WORDS: tuple[str, ...] = tuple(w for w in _MOODS if w not in TIMBRE_TAGS)
# Word -> the root a tag must contain ("jazzy" is true of a clip tagged "acid jazz").
_STYLE_ROOTS = {
    "jazzy": "jazz", "bluesy": "blues", "punky": "punk", "poppy": "pop", "soulful": "soul", "funky": "funk",
    "folky": "folk", "rnb": "rb", "afrobeats": "afrobeat", "electronica": "electronic", "melancholic": "melanchol",
    "melancholy": "melanchol", "chilled": "chill", "relaxing": "relax", "relaxed": "relax", "somber": "somb",
    "sombre": "somb", "joyous": "joy", "joyful": "joy",
}  # fmt: skip
_STYLE_CONTEXT = {"rock": r"(?!\s+(?:solid|steady))"}  # "a rock-solid groove" names no genre


def _style_regex(words: Iterable[str]) -> re.Pattern[str]:
    ordered = sorted(set(words), key=lambda w: (-len(w), w))
    body = "|".join(r"\s+".join(map(re.escape, w.split())) + _STYLE_CONTEXT.get(w, "") for w in ordered)
    return re.compile(rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])")


@lru_cache(maxsize=1)
def genre_regex() -> re.Pattern[str]:
    return _style_regex(GENRE_WORDS)


@lru_cache(maxsize=1)
def mood_regex() -> re.Pattern[str]:
    return _style_regex(MOOD_WORDS)


def _compact(text: str) -> str:
    return normalise(text).replace(" ", "")


def style_allowed(word: str, labels: Iterable[str]) -> bool:
    """Whether a genre or mood word is true of a clip with these genre tags (and timbre/FX labels): some
    label contains its root ("hip-hop" for "hip hop", "acid jazz" for "jazzy", "chillout" for "chill")."""
    root = _STYLE_ROOTS.get(_compact(word), _compact(word))
    return any(root in _compact(label) for label in labels)
