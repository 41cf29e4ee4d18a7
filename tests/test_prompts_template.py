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
from pipeline.prompts.template import natural_prompt, subset_prompt, tags_prompt, template_prompt
from pipeline.prompts.validate import check_prompt
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
            genre_tags=list(rng.choice(["jazz", "rock", "80s", "female vocalists", "hip-hop", "lo-fi"], size=2)),
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
