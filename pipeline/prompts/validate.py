"""Check a prompt against its clip's facts: it names what it must and states nothing false.

Every prompt is checked, template-made or LLM-written. `check_prompt` returns the
problems as short reasons (empty: valid), which the writer records as `rejected`.

Rules:

1. Instruments: every instrument is named by one of its accepted terms (GM name, a
   word-suffix of it, its sub-family or family, a display name or a synonym, see
   vocab.py), and every instrument word in the text (vocab.LIE_TERMS; leading
   timbre, genre and effect words dropped) is accepted by some instrument.
2. Key: with a key, the text states its tonic and scale ("F# minor", "F sharp minor",
   "Gb minor", "F#m"), and every key, tonic ("key of F#") or scale word ("minor key")
   in it agrees (enharmonic spellings agree). Without a key it states none.
3. BPM: it states the BPM ("120 BPM", "bpm: 120", "a tempo of 120", "one hundred and
   twenty beats per minute") as round(bpm) or to one decimal, and no other. A withheld
   BPM (the tempo varies inside the clip) is stated not at all.
4. Bars and time signature: "N bars"/"bars: N" must be the clip's bars; "N/M" (or "common
   time", "waltz time") its time signature. A withheld meter (it changes inside the clip)
   is stated not at all: no "N/M", "time signature", "common time", "triple meter".
5. Numbers: every number (digits or number words) is one the facts hold: BPM, bars, the
   time signature, or digits in an instrument name, genre tag or effect label; or a
   count of instruments ("two clean electric guitars"), at most the number of the
   clip's instruments that name accepts.
6. Effects: effect words (reverb, delay, distortion, ...) only when an fx label holds them.
7. Genres and moods: a genre word (vocab.GENRE_WORDS: "jazz", "hip hop", "funky") or a
   mood word (vocab.MOOD_WORDS: "happy", "melancholic") only when a genre tag of the clip
   holds it (vocab.style_allowed); instrument names the clip has ("Jazz Drum Kit",
   "Rock Organ", "New Age Pad") are not genre words.
8. Length: at most MAX_WORDS words (T5's 128-token window), and not empty.
"""

from __future__ import annotations

import re

from pipeline.prompts import vocab
from pipeline.prompts.attributes import Facts

MAX_WORDS = 70

_BPM_RES = (
    re.compile(r"(\d+(?:\.\d+)?)\s*(?:bpm|beats\s+(?:per|a)\s+minute)(?![a-z])"),
    re.compile(r"(?<![a-z])(?:bpm|tempo)\s*(?:of|is|at|:|=|around)?\s*(?:around\s+|about\s+)?(\d+(?:\.\d+)?)"),
)
_BARS_RES = (
    re.compile(r"(\d+(?:\.\d+)?)\s*(?:bars?|measures?)(?![a-z])"),
    re.compile(r"(?<![a-z])(?:bars?|measures?)\s*[:=]\s*(\d+(?:\.\d+)?)"),
)
_COUNT_RE = re.compile(r"(?<![\d./])(\d+)\s+((?:[a-z]+\s+){0,3})$")  # a count, then up to 3 modifier words
_COUNT_SEPARATORS_RE = re.compile(r"[-_()+\"&]")
_SPACES_RE = re.compile(r"\s+")
_METER_RE = re.compile(r"(?<![\d.])(\d+)\s*/\s*(\d+)(?!\d|\.\d)")
# Meters named in words: any of them is a lie when the meter is withheld; the named ones must match.
_NAMED_METERS = {"common": "4/4", "cut": "2/2", "waltz": "3/4"}
_METER_WORDS_RE = re.compile(
    r"(?<![a-z])(?:(common|cut|waltz)\s+time|time\s+signatures?|(?:duple|triple|quadruple|compound|odd)\s+(?:meter|metre|time))"
    r"(?![a-z])"
)


def _fmt(x: float) -> str:
    return f"{x:g}"


def _instrument_issues(text: str, facts: Facts) -> tuple[list[str], list[tuple[int, int]], list[tuple[int, int]]]:
    """Issues, the spans of every instrument word, and the spans of the names the clip's instruments
    accept as they stand ("jazz guitar" for an Electric Guitar (jazz)), in vocab.normalise(text)."""
    norm = vocab.normalise(text)
    accepted = frozenset().union(*(i.terms for i in facts.instruments))
    issues = [
        f"does not name the {i.name}" for i in facts.instruments if not vocab.accepted_regex(i.terms).search(norm)
    ]
    mods = vocab.modifiers([*facts.timbre, *facts.genres, *facts.fx])
    spans, named = [], []
    for m in vocab.lie_regex().finditer(norm):
        spans.append((m.start(), m.end()))
        if vocab.canonical(m.group(0)) in accepted:
            named.append((m.start(), m.end()))
        if _strip_modifiers(m.group(0), mods, accepted) not in accepted:
            issues.append(f"names an instrument the clip does not have: {m.group(0)!r}")
    return issues, spans, named


def _masked(norm: str, spans: list[tuple[int, int]]) -> str:
    for a, b in spans:
        norm = norm[:a] + " " * (b - a) + norm[b:]
    return norm


def _style_issues(text: str, facts: Facts, named_spans: list[tuple[int, int]]) -> list[str]:
    """Genre and mood words only when the clip's genre tags hold them; an instrument's own name
    ("Jazz Drum Kit", "Rock Organ") is no genre."""
    norm = _masked(vocab.normalise(text), named_spans)
    labels = [*facts.genres, *facts.timbre, *facts.fx]
    issues = [
        f"invents a {what} {m.group(0)!r} (genre tags: {', '.join(facts.genres) or 'none'})"
        for what, regex in (("genre", vocab.genre_regex()), ("mood", vocab.mood_regex()))
        for m in regex.finditer(norm)
        if not vocab.style_allowed(m.group(0), labels)
    ]
    return list(dict.fromkeys(issues))


def _strip_modifiers(matched: str, mods: frozenset[str], accepted: frozenset[str]) -> str:
    words = vocab.canonical(matched).split()
    while len(words) > 1 and words[0] in mods and " ".join(words) not in accepted:
        words = words[1:]
    return " ".join(words)


def _count_issues(text: str, facts: Facts) -> tuple[list[str], list[float]]:
    """Counts before an instrument name ("two clean electric guitars", "3 warm synths"): at most as many
    instruments as the name accepts. Returns the issues and the counts checked (the number rule skips them)."""
    low = vocab.digits_for_words(vocab.key_text_lower(text))
    t = _SPACES_RE.sub(" ", _COUNT_SEPARATORS_RE.sub(" ", low))  # like vocab.normalise, keeping "/" (4/4)
    accepted = frozenset().union(*(i.terms for i in facts.instruments))
    mods = vocab.modifiers([*facts.timbre, *facts.genres, *facts.fx])
    issues: list[str] = []
    counted: list[float] = []
    for m in vocab.lie_regex().finditer(t):
        before = _COUNT_RE.search(t[: m.start()])
        if not before or any(w not in mods for w in before.group(2).split()):
            continue
        n = float(before.group(1))
        term = _strip_modifiers(m.group(0), mods, accepted)
        have = sum(term in i.terms for i in facts.instruments)
        if n < 2 or have == 0:  # "1 ..." is left to the number rule; a wrong name to the instrument rule
            continue
        counted.append(n)
        if n > have:
            issues.append(f"states {_fmt(n)} {m.group(0)!r} but the clip has {have}")
    return issues, counted


def _key_issues(text: str, facts: Facts) -> list[str]:
    low = vocab.key_text_lower(text)
    issues: list[str] = []
    want_pc = vocab.tonic_pc(facts.tonic[0], facts.tonic[1:] or None) if facts.tonic else None
    stated: list[tuple[int, str]] = []
    covered: list[tuple[int, int]] = []
    for m in vocab.KEY_RE.finditer(low):
        stated.append((vocab.tonic_pc(m.group(1), m.group(2)), vocab.scale_of(m.group(3))))
        covered.append(m.span())
    for m in vocab.SHORT_KEY_RE.finditer(text):
        stated.append((vocab.tonic_pc(m.group(1), m.group(2)), "minor"))
    for pc, scale in stated:
        if want_pc is None:
            issues.append("states a key but the clip has none")
        elif (pc, scale) != (want_pc, facts.scale):
            issues.append(f"states another key than {facts.key}")
    tonics = []
    for m in vocab.KEY_OF_RE.finditer(low):
        tonics.append(vocab.tonic_pc(m.group(1), m.group(2)))
        if want_pc is None:
            issues.append("states a key but the clip has none")
        elif tonics[-1] != want_pc:
            issues.append(f"states another tonic than {facts.tonic}: {m.group(0)!r}")
    scales = []
    for m in vocab.SCALE_RE.finditer(low):
        if any(a <= m.start() < b for a, b in covered):
            continue
        scales.append(m.group(1))
        if facts.scale is None:
            issues.append(f"states a scale ({m.group(1)}) but the clip has no key")
        elif m.group(1) != facts.scale:
            issues.append(f"states {m.group(1)} but the clip is {facts.scale}")
    # "F# minor" in one phrase, or the tonic ("key: F#") and the scale ("minor key") apart.
    said = (want_pc, facts.scale) in stated or (want_pc in tonics and facts.scale in scales)
    if want_pc is not None and not said:
        issues.append(f"does not state the key {facts.key}")
    return list(dict.fromkeys(issues))


def _meter_issues(low: str, facts: Facts) -> list[str]:
    issues = []
    for m in _METER_RE.finditer(low):
        stated = f"{m.group(1)}/{m.group(2)}"
        if facts.time_signature is None:
            issues.append(f"states a time signature ({stated}) but the clip's meter is withheld")
        elif stated != facts.time_signature:
            issues.append(f"states {stated} time (clip: {facts.time_signature})")
    for m in _METER_WORDS_RE.finditer(low):
        if facts.time_signature is None:
            issues.append(f"states a meter ({m.group(0)!r}) but the clip's meter is withheld")
        elif m.group(1) in _NAMED_METERS and _NAMED_METERS[m.group(1)] != facts.time_signature:
            issues.append(f"states {m.group(0)!r} (clip: {facts.time_signature})")
    return issues


def _number_issues(text: str, facts: Facts, counted: list[float]) -> list[str]:
    low = vocab.digits_for_words(vocab.key_text_lower(text))
    issues: list[str] = []
    bpms = [float(m.group(1)) for r in _BPM_RES for m in r.finditer(low)]
    allowed_bpm = facts.bpm_values()
    if facts.bpm is None:
        issues += [f"states {_fmt(b)} BPM but the clip's tempo is withheld" for b in bpms]
    else:
        issues += [f"states {_fmt(b)} BPM (clip: {facts.bpm_text})" for b in bpms if b not in allowed_bpm]
        if not any(b in allowed_bpm for b in bpms):
            issues.append(f"does not state the BPM ({facts.bpm_text})")
    for r in _BARS_RES:
        if facts.bars is None:
            issues += [f"states {m.group(1)} bars but the clip's bar count is withheld" for m in r.finditer(low)]
        else:
            issues += [f"states {m.group(1)} bars (clip: {facts.bars})" for m in r.finditer(low)
                       if float(m.group(1)) != facts.bars]  # fmt: skip
    issues += _meter_issues(low, facts)
    allowed = facts.allowed_numbers()
    numbers = vocab.numbers_in(low)
    for n in counted:  # instrument counts, checked by the count rule
        if n in numbers:
            numbers.remove(n)
    issues += [f"states a number the clip does not hold: {_fmt(n)}" for n in numbers if n not in allowed]
    return list(dict.fromkeys(issues))


def _fx_issues(text: str, facts: Facts, instrument_spans: list[tuple[int, int]]) -> list[str]:
    norm = _masked(vocab.normalise(text), instrument_spans)  # "distortion guitar" is an instrument, not an effect
    labels = " ".join(vocab.normalise(f) for f in facts.fx)
    return [
        f"states an effect the clip does not have: {m.group(1)!r}"
        for m in vocab.FX_RE.finditer(norm)
        if not any(root in labels for root in vocab.FX_WORDS[m.group(1)])
    ]


def check_prompt(text: str, facts: Facts) -> list[str]:
    """Why `text` is not a valid prompt for `facts` (empty list: it is)."""
    if not text.strip():
        return ["empty"]
    issues: list[str] = []
    n_words = len(text.split())
    if n_words > MAX_WORDS:
        issues.append(f"too long ({n_words} words > {MAX_WORDS})")
    inst_issues, spans, named = _instrument_issues(text, facts)
    issues += inst_issues
    issues += _key_issues(text, facts)
    count_issues, counted = _count_issues(text, facts)
    issues += count_issues
    issues += _number_issues(text, facts, counted)
    issues += _fx_issues(text, facts, spans)
    issues += _style_issues(text, facts, named)
    return issues
