"""Template prompts: the three styles, their variations, and that every one passes the validator."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from pipeline.analysis.notation import CONTOURS, DENSITIES, REGISTERS, ROLES, SPEEDS
from pipeline.analysis.timbre import TIMBRE_TAGS
from pipeline.ids import item_rng
from pipeline.midi.keys import NOTE_NAMES
from pipeline.params import StyleMix
from pipeline.prompts.attributes import clip_facts
from pipeline.prompts.template import (
    ESSENTIAL,
    natural_prompt,
    subset_prompt,
    tags_prompt,
    template_form,
    template_prompt,
)
from pipeline.prompts.validate import MAX_WORDS, check_prompt
from pipeline.prompts.writer import choose_style
from tests.clip_factory import instrument, make_clip

STEM = clip_facts(
    make_clip(
        instruments=[instrument(4, role="arpeggio", speed="fast", density="dense", contour="rising", register="high")],
        key="A minor",
        bpm=120,
        bars=8,
        timbre=["warm", "bright"],
        fx=["medium reverb"],
    )
)


def test_tags_follow_foundation_1_order():
    text = tags_prompt(STEM, np.random.default_rng(0))
    assert text == (
        "Electric Piano, Warm, Bright, Arpeggio, Fast, Dense, Rising, High Register, Medium Reverb, "
        "A minor, 8 Bars, 120 BPM"
    )


def test_tags_for_a_mix_list_every_instrument_then_the_parts():
    facts = clip_facts(make_clip(programs=((2, False), (33, False), (0, True)), key="C major", bpm=96, bars=4))
    parts = tags_prompt(facts, np.random.default_rng(1)).split(", ")
    assert parts[-3:] == ["C major", "4 Bars", "96 BPM"]
    assert parts[0] in ("Electric Grand Piano", "Electric Piano") and parts[1] == "Electric Bass"
    assert parts[2] in ("Drums", "Drum Kit")
    assert parts[3:5] == ["Warm", "Bright"] and parts[5:7] == ["Chord Progression", "Bassline"]


def test_subset_halves_key_value_and_bare_with_case_variations():
    facts = clip_facts(make_clip(genre_tags=["jazz"], energy=0.9))
    texts = [subset_prompt(facts, np.random.default_rng(s)) for s in range(400)]
    pairs = [t for t in texts if re.search(r"(?i)\bbpm: 120\b", t)]
    bare = [t for t in texts if re.search(r"(?i)\b120 bpm\b", t)]
    assert len(pairs) + len(bare) == len(texts)
    assert 160 < len(pairs) < 240  # half and half
    cases = Counter("upper" if t.isupper() else "lower" if t.islower() else "mixed" for t in texts)
    assert cases["upper"] > 20 and cases["lower"] > 100 and cases["mixed"] > 100
    # Shuffled order: the first field varies; optional fields come and go.
    assert len({t.lower().split(",")[0].split(":")[0] for t in texts}) >= 5
    assert 100 < sum("jazz" in t.lower() for t in texts) < 300


def test_subset_always_states_instruments_key_and_bpm():
    facts = clip_facts(make_clip(key="Bb major", bpm=88))
    for s in range(100):
        text = subset_prompt(facts, np.random.default_rng(s)).lower()
        assert "bb major" in text and "88" in text and "bass" in text and "piano" in text


def test_natural_sentences_vary():
    facts = clip_facts(make_clip(genre_tags=["soul"], fx=["plate reverb"]))
    texts = {natural_prompt(facts, np.random.default_rng(s)) for s in range(100)}
    assert len(texts) > 90
    assert len({t.split()[0] for t in texts}) >= 4  # different frames and subjects
    assert all(t.endswith(".") for t in texts)


def test_same_rng_same_prompt():
    for style in ("natural", "tags", "subset"):
        a = template_prompt(style, STEM, item_rng(1, "prompts", "x"))
        assert a == template_prompt(style, STEM, item_rng(1, "prompts", "x"))


def test_style_mixture_ratios_are_respected_over_many_clips():
    weights = StyleMix(natural=0.5, tags=0.3, subset=0.2).model_dump()
    counts = Counter(choose_style(weights, item_rng(7, "prompts", f"clip{i}")) for i in range(3000))
    assert abs(counts["natural"] / 3000 - 0.5) < 0.04
    assert abs(counts["tags"] / 3000 - 0.3) < 0.04
    assert abs(counts["subset"] / 3000 - 0.2) < 0.04
    only = StyleMix(natural=0, tags=1, subset=0).model_dump()
    assert {choose_style(only, item_rng(7, "prompts", f"clip{i}")) for i in range(50)} == {"tags"}


ALL_INSTRUMENTS = [(p, False) for p in range(128)] + [(k, True) for k in (0, 8, 16, 24, 25, 32, 40, 48, 56)]


@pytest.mark.parametrize("chunk", range(4))
def test_template_prompts_pass_the_validator_for_every_gm_instrument(chunk):
    """Random clips over all 128 programs and 9 kits, all notation/timbre terms, keys, meters and effects
    (key, BPM and meter sometimes withheld)."""
    rng = np.random.default_rng(chunk)
    failures = []
    for trial in range(400):
        picks = rng.choice(len(ALL_INSTRUMENTS), size=int(rng.integers(1, 5)), replace=False)
        insts = []
        for i, j in enumerate(picks):
            program, drum = ALL_INSTRUMENTS[int(j)]
            role = "drums" if drum else str(rng.choice([r for r in ROLES if r != "drums"]))
            insts.append(
                instrument(
                    program,
                    drum,
                    index=i,
                    role=role,
                    speed=str(rng.choice(SPEEDS)),
                    density=str(rng.choice(DENSITIES)),
                    contour=str(rng.choice(CONTOURS)),
                    register=None if drum else str(rng.choice(REGISTERS)),
                )
            )
        clip = make_clip(
            trial,
            instruments=insts,
            key=None if rng.random() < 0.1 else f"{rng.choice(NOTE_NAMES)} {rng.choice(['major', 'minor'])}",
            bpm=None if rng.random() < 0.1 else float(rng.choice([120.0, 92.5, 161.8991, 70.0, 99.96])),
            bars=int(rng.choice([1, 2, 4, 8, 16])),
            time_signature=None if rng.random() < 0.1 else str(rng.choice(["4/4", "3/4", "6/8", "12/8"])),
            timbre=sorted(set(rng.choice(TIMBRE_TAGS, size=int(rng.integers(0, 4))))),
            fx=list(rng.choice(["reverb", "medium reverb", "delay", "distortion", "phaser", "chorus"], size=2))[
                : int(rng.integers(0, 3))
            ],
            genre_tags=[]  # names like "Rock Organ", "Jazz Drum Kit" must not read as genres
            if rng.random() < 0.3
            else list(rng.choice(["jazz", "rock", "80s", "female vocalists", "hip-hop", "lo-fi"], size=2)),
            energy=float(rng.random()),
        )
        facts = clip_facts(clip)
        for style in ("natural", "tags", "subset"):
            text = template_prompt(style, facts, item_rng(chunk, "prompts", f"{clip.id}#{style}"))
            issues = check_prompt(text, facts)
            if issues:
                failures.append((text, issues))
    assert failures == []


_BPM_RE = re.compile(r"(?i)\d+(?:\.\d+)?\s*(?:bpm|beats per minute)|bpm:|tempo")
_METER_RE = re.compile(r"\d+\s*/\s*\d+|(?i:time signature)")


@pytest.mark.parametrize(
    ("key", "bpm", "meter"),
    [("A minor", None, "4/4"), ("A minor", 120.0, None), ("A minor", None, None), (None, None, None)],
)
def test_withheld_labels_are_stated_in_no_style(key, bpm, meter):
    facts = clip_facts(make_clip(key=key, bpm=bpm, time_signature=meter, bars=4, genre_tags=["soul"], energy=0.9))
    for style in ("natural", "tags", "subset"):
        for s in range(60):
            text = template_prompt(style, facts, np.random.default_rng(s))
            assert check_prompt(text, facts) == [], text
            assert bool(_BPM_RE.search(text)) == (bpm is not None), text
            if meter is None:
                assert not _METER_RE.search(text), text
            if key is None:
                assert not re.search(r"(?i)\b(?:major|minor|key)\b", text), text
            else:
                assert "a minor" in text.lower(), text
    tags = tags_prompt(facts, np.random.default_rng(0)).split(", ")
    assert tags[-1] == ("4 Bars" if bpm is None else "120 BPM")  # bars still stated


_BAD_ARTICLE = re.compile(r"(?i)\b(?:a (?:[aeio]|8|11-|18-)|an (?![aeiou8]|11-|18-|sfx)\w)")


def test_articles_fit_the_next_word():
    # An arch-contour melody on a flute ("an arch melody"), an airy sound, an 80s feel, an 8-bar loop.
    inst = [instrument(73, role="melody", contour="arch", speed="moderate"),
            instrument(32, index=1, role="bassline", contour="arch")]  # fmt: skip
    cases = [
        (make_clip(instruments=inst, timbre=["airy"], genre_tags=["80s"]),
         ("an arch melody", "an arch bassline", "with an airy sound", "an 8-bar loop", "an 80s feel")),
        (make_clip(instruments=inst[:1], timbre=["airy", "warm"], genre_tags=["electronic"]),
         ("an arch melody", "with an airy and warm sound", "an electronic style", "an electronic feel")),
    ]  # fmt: skip
    for clip, phrases in cases:
        facts = clip_facts(clip)
        texts = [natural_prompt(facts, np.random.default_rng(s)) for s in range(300)]
        assert [t for t in texts if _BAD_ARTICLE.search(t)] == []
        joined = " ".join(texts).lower()
        assert [p for p in phrases if p not in joined] == []


def test_article_helper():
    from pipeline.prompts.template import _an

    cases = {"arch melody": "an", "8-bar loop": "an", "16-bar phrase": "a", "11-bar phrase": "an", "80s feel": "an",
             "unison line": "a", "electronic style": "an", "SFX Drum Kit": "an", "TR-808 Drum Kit": "a",
             "hour": "an", "loop": "a", "uk garage feel": "a", "orchestra hit": "an"}  # fmt: skip
    assert {w: _an(w).split()[0] for w in cases} == cases


def test_dry_and_wet_labels_are_not_written_as_effects():
    dry = clip_facts(make_clip(fx=["Dry"]))
    texts = [natural_prompt(dry, np.random.default_rng(s)) for s in range(200)]
    assert not [t for t in texts if re.search(r"(?i)with dry|treated with", t)]
    assert sum(bool(re.search(r"no effects|dry", t)) for t in texts) > 100  # 'Dry' is said as "no effects"/"dry"
    wet = clip_facts(make_clip(fx=["Medium Reverb", "Bitcrushed", "Wet"]))
    texts = [natural_prompt(wet, np.random.default_rng(s)) for s in range(200)]
    assert not [t for t in texts if re.search(r"(?i)\bwet\b|with bitcrushed", t)]
    assert sum("medium reverb and a bitcrusher" in t for t in texts) > 100
    assert tags_prompt(dry, np.random.default_rng(0)).split(", ")[-4] == "Dry"  # Foundation-1 keeps the tag
    for facts in (dry, wet):
        for style in ("natural", "tags", "subset"):
            for s in range(50):
                assert check_prompt(template_prompt(style, facts, np.random.default_rng(s)), facts) == []


def test_instruments_that_read_the_same_are_named_once():
    # Electric Guitar (jazz) and (clean) share their display names; two Slap Bass tracks share a GM name.
    programs = ((26, False), (27, False), (36, False), (36, False), (0, True))
    facts = clip_facts(make_clip(programs=programs))
    counts = Counter()
    for style in ("natural", "tags", "subset"):
        for s in range(100):
            text = template_prompt(style, facts, np.random.default_rng(s))
            assert check_prompt(text, facts) == [], text
            low = text.lower()
            guitars = re.findall(r"(?:clean )?electric guitars?", low)
            basses = re.findall(r"slap bass(?:es)?", low)
            assert len(guitars) == 1 and len(basses) == 1, text
            counts[style, "two" in low] += 1
    assert counts["natural", True] == 100  # "two clean electric guitars", "two slap basses"
    assert counts["tags", False] == 100 and counts["subset", False] == 100  # lists name each once


def _ensemble(n: int, rng: np.random.Generator) -> list:
    """n instruments of mixed families: a drum kit and n-1 distinct melodic programs."""
    programs = rng.choice(128, size=n - 1, replace=False)
    return [instrument(int(p), index=i, contour="arch") for i, p in enumerate(programs)] + [
        instrument(0, True, index=n - 1)
    ]


_FAMILY_LABEL = re.compile(
    r"(?i)\b(?:brass|synths|woodwinds|pianos|keys|guitars|basses|organs|chromatic percussion|ethnic instruments)\b"
)
LONG_GENRES = ["soul", "funk", "acid jazz", "nu soul", "80s", "disco", "lo-fi", "hip-hop", "neo soul", "dance"]


@pytest.mark.parametrize("n", [12, 16, 24])
def test_large_ensembles_always_fit_and_keep_the_required_facts(n):
    """Every style for clips of 12, 16 and 24 instruments: valid, within MAX_WORDS, with key, BPM and bars;
    the shorter forms keep the meter and genre."""
    rng = np.random.default_rng(n)
    levels = Counter()
    for trial in range(12):
        clip = make_clip(
            trial, instruments=_ensemble(n, rng), key="F# minor", bpm=97.0, bars=16, time_signature="6/8",
            genre_tags=LONG_GENRES, timbre=["warm", "bright", "wide", "punchy", "airy"], energy=0.9,
            fx=["Medium Reverb", "Ping Pong Delay", "Chorus", "Wet"],
        )  # fmt: skip
        facts = clip_facts(clip)
        for style in ("natural", "tags", "subset"):
            for s in range(8):
                text, level = template_form(style, facts, np.random.default_rng(s))
                levels[level] += 1
                assert check_prompt(text, facts) == [], text
                assert len(text.split()) <= MAX_WORDS
                low = text.lower()
                assert ("f# minor" in low or "f sharp minor" in low) and "97" in low, text
                if style == "tags" or level >= ESSENTIAL:
                    assert "16 bars" in low or "16-bar" in low, text
                if level >= ESSENTIAL and style != "tags":
                    assert "6/8" in low and "soul" in low, text
                if level >= 2:  # families grouped under their labels
                    assert _FAMILY_LABEL.search(text), text
    assert levels[0] < sum(levels.values())  # the full form did not always fit: the fallbacks were used
    if n == 24:
        assert levels[2] + levels[3] + levels[4] > 0


def test_ensemble_form_groups_families():
    insts = [instrument(p, index=i) for i, p in enumerate((40, 41, 42, 48, 56, 57, 60, 0, 4, 33))]
    insts.append(instrument(0, True, index=10))
    facts = clip_facts(make_clip(instruments=insts))
    text = natural_prompt(facts, np.random.default_rng(0), level=2)
    assert re.search(r"strings, brass, pianos, electric bass and (?:drums|drum kit)", text.lower()), text
    assert check_prompt(text, facts) == []
    tags = tags_prompt(facts, np.random.default_rng(0), level=2).split(", ")
    assert tags[:5] == ["Strings", "Brass", "Pianos", "Electric Bass", tags[4]] and tags[4] in ("Drums", "Drum Kit")


@pytest.mark.parametrize("chunk", range(2))
def test_large_ensembles_of_every_gm_instrument_fit(chunk):
    """Random 10-24 instrument clips over all programs and kits: every style valid and within MAX_WORDS."""
    rng = np.random.default_rng(100 + chunk)
    failures = []
    for trial in range(60):
        picks = rng.choice(len(ALL_INSTRUMENTS), size=int(rng.integers(10, 25)), replace=False)
        insts = [instrument(ALL_INSTRUMENTS[int(j)][0], ALL_INSTRUMENTS[int(j)][1], index=i,
                            contour=str(rng.choice(CONTOURS))) for i, j in enumerate(picks)]  # fmt: skip
        facts = clip_facts(
            make_clip(
                trial, instruments=insts, key=None if rng.random() < 0.2 else "Eb major",
                bpm=None if rng.random() < 0.2 else 132.0, time_signature=None if rng.random() < 0.2 else "4/4",
                genre_tags=list(rng.choice(LONG_GENRES, size=int(rng.integers(0, 10)), replace=False)),
                timbre=sorted(set(rng.choice(TIMBRE_TAGS, size=int(rng.integers(0, 6))))), energy=float(rng.random()),
                fx=["High Reverb", "Phaser", "Wet"] if rng.random() < 0.5 else ["Dry"],
            )
        )  # fmt: skip
        for style in ("natural", "tags", "subset"):
            text = template_prompt(style, facts, item_rng(chunk, "prompts", f"{trial}#{style}"))
            issues = check_prompt(text, facts)
            if issues or len(text.split()) > MAX_WORDS:
                failures.append((text, issues))
    assert failures == []
