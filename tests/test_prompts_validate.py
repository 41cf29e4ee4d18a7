"""The prompt validator: what a prompt must name, and the lies it must catch."""

from __future__ import annotations

import pytest

from pipeline.prompts.attributes import clip_facts
from pipeline.prompts.validate import MAX_WORDS, check_prompt
from tests.clip_factory import instrument, make_clip

# Electric Grand Piano (chords), Acoustic Bass (bassline), Standard Drum Kit; F# minor, 161.8991 BPM, 8 bars, 4/4.
FACTS = clip_facts(make_clip(key="F# minor", bpm=161.8991))
OK = "Electric piano, acoustic bass and drums in F# minor at 162 BPM"


@pytest.mark.parametrize(
    "text",
    [
        OK + ".",
        "Electric piano, acoustic bass and drums in F# minor at 161.9 BPM.",  # one decimal, as written
        "Keys, upright bass and a drum kit in Gb minor, 162 bpm, 4/4.",  # synonyms, enharmonic tonic
        "Electric piano, acoustic bass and drums in F sharp minor at one hundred sixty-two beats per minute.",
        "Electric-piano chords, double bass and a beat in F-sharp minor, tempo: 162, eight bars.",
        "Electric Grand Piano, Acoustic Bass, Standard Drum Kit, F#m, 162 BPM, 8 Bars",
        "electric piano, acoustic bass, drums, key: F#, minor key, bpm: 162, bars: 8",  # tonic and scale apart
        "ELECTRIC PIANO, ACOUSTIC BASS, DRUMS, KEY: F# MINOR, BPM: 162, TIME SIGNATURE: 4/4",
        "Warm, bright grand piano with a bass-heavy acoustic bass and drums, F# minor, 162 BPM.",
        "An eight-bar loop: piano, bass and percussion in F♯ minor at 162 BPM.",
    ],
)
def test_true_prompts_pass(text):
    assert check_prompt(text, FACTS) == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (OK.replace("162", "120"), "states 120 BPM"),
        (OK.replace("162 BPM", "one hundred twenty beats per minute"), "states 120 BPM"),
        (OK.replace(" at 162 BPM", ""), "does not state the BPM"),
        (OK.replace("F# minor", "A minor"), "states another key"),
        (OK.replace("F# minor", "F# major"), "states another key"),
        (OK.replace("F# minor", "G minor"), "states another key"),
        (OK.replace("in F# minor ", ""), "does not state the key"),
        (OK + ", key of C", "states another tonic"),
        (OK + ", with a happy major feel", "states major but the clip is minor"),
        (OK + ", with a major feel", "states another key"),  # "a major" reads as A major
        (OK + ", 12 bars", "states 12 bars"),
        (OK + ", twelve bars", "states 12 bars"),
        (OK + ", a sixteen-bar phrase", "states 16 bars"),
        (OK + ", bars: 4", "states 4 bars"),
        (OK + ", in 3/4", "states 3/4 time"),
        (OK + ", 7 layers", "number the clip does not hold: 7"),
        (OK + ", three layers", "number the clip does not hold: 3"),
        (OK + " and a saxophone", "does not have: 'saxophone'"),
        (OK + " with female vocals", "does not have: 'vocals'"),
        (OK + " and a synth pad", "does not have: 'synth pad'"),
        (OK.replace("Electric piano", "Acoustic piano"), "does not have: 'acoustic piano'"),
        (OK.replace("Electric piano", "Electric guitar"), "does not name the Electric Grand Piano"),
        (OK.replace(", acoustic bass", ""), "does not name the Acoustic Bass"),
        (OK.replace(" and drums", ""), "does not name the Standard Drum Kit"),
        (OK + ", drenched in reverb", "effect the clip does not have: 'reverb'"),
        ("", "empty"),
        (OK + " " + "very " * MAX_WORDS, "too long"),
    ],
)
def test_lies_and_omissions_are_caught(text, reason):
    issues = check_prompt(text, FACTS)
    assert any(reason in i for i in issues), issues


def test_a_one_is_a_pronoun_unless_a_unit_follows():
    assert check_prompt(OK + ", a mellow one", FACTS) == []
    assert any("1 bars" in i for i in check_prompt(OK + ", one bar", FACTS))


def test_beats_per_minute_does_not_name_the_drums():
    facts = clip_facts(make_clip(programs=((0, False),), key="C major", bpm=120))
    assert check_prompt("Solo piano in C major at 120 beats per minute.", facts) == []
    assert any("does not have: 'drums'" in i for i in check_prompt("Piano and drums, C major, 120 BPM.", facts))


def test_clip_without_key_states_none():
    facts = clip_facts(make_clip(programs=((0, True),), key=None, bpm=174))
    assert check_prompt("Punchy drums at 174 BPM.", facts) == []
    for text in (
        "Drums in A minor at 174 BPM.",
        "Drums at 174 BPM in a minor key.",
        "Drums, key of D, 174 BPM",
        "Drums, F#m, 174 BPM.",
        "Drums in E flat major, 174 BPM.",
        "Drums, key: Bb, 174 BPM.",
    ):
        assert any("clip has no key" in i or "has none" in i for i in check_prompt(text, facts)), text


@pytest.mark.parametrize(
    ("program", "names"),
    [
        (2, ["electric piano", "piano", "keys", "Electric Grand Piano", "grand piano"]),
        (26, ["jazz guitar", "electric guitar", "guitar", "clean electric guitar"]),
        (33, ["bass", "electric bass", "bass guitar", "finger bass"]),
        (48, ["strings", "string ensemble", "string section"]),
        (52, ["choir", "voices"]),
        (65, ["alto sax", "sax", "saxophone"]),
        (81, ["sawtooth lead", "synth lead", "lead synth", "synth"]),
        (89, ["warm pad", "synth pad", "pad"]),
        (30, ["distortion guitar", "distorted guitar", "electric guitar"]),
    ],
)
def test_instrument_synonyms_are_accepted(program, names):
    facts = clip_facts(make_clip(programs=((program, False),), key="C major", bpm=100))
    for name in names:
        assert check_prompt(f"A {name} in C major at 100 BPM.", facts) == [], name


@pytest.mark.parametrize(
    ("program", "lie"),
    [(0, "electric piano"), (32, "synth bass"), (56, "saxophone"), (24, "electric guitar"), (48, "synth pad")],
)
def test_a_sibling_instrument_is_a_lie(program, lie):
    facts = clip_facts(make_clip(programs=((program, False),), key="C major", bpm=100))
    assert any("does not have" in i for i in check_prompt(f"{lie}, C major, 100 BPM", facts))


def test_drum_kit_synonyms():
    facts = clip_facts(make_clip(programs=((25, True),), key=None, bpm=90))
    for name in ("drums", "drum kit", "beat", "TR-808 drum kit", "808 drum kit", "drum machine"):
        assert check_prompt(f"A {name} at 90 BPM.", facts) == [], name


def test_timbre_words_before_an_instrument_do_not_make_another():
    # "Bright Acoustic Piano" is GM 1, but a bright-sounding GM 0 piano may be called that.
    facts = clip_facts(make_clip(programs=((0, False),), key="C major", bpm=100, timbre=["bright"]))
    assert check_prompt("A bright acoustic piano in C major, 100 BPM.", facts) == []
    assert check_prompt("A bright electric piano in C major, 100 BPM.", facts) != []


def test_numbers_held_by_names_genres_and_effects_are_allowed():
    inst = [instrument(25, True)]
    facts = clip_facts(make_clip(instruments=inst, key=None, bpm=90, genre_tags=["80s"], fx=["delay 3"]))
    assert check_prompt("TR-808 drum kit at 90 BPM, an 80s beat with delay 3.", facts) == []


def test_genre_tags_naming_instruments_keys_or_effects_are_not_facts():
    facts = clip_facts(make_clip(genre_tags=["jazz", "female vocalists", "piano", "c major", "reverb", "80s"]))
    assert facts.genres == ["jazz", "80s"]


# Electric Grand Piano, Acoustic Bass, drums; A minor, 8 bars; tempo and meter withheld (they change in the clip).
WITHHELD = clip_facts(make_clip(key="A minor", bpm=None, time_signature=None))


def test_withheld_tempo_and_meter_need_no_bpm_or_meter():
    assert WITHHELD.bpm is None and WITHHELD.time_signature is None
    for text in (
        "Electric piano, acoustic bass and drums in A minor.",
        "Electric piano, acoustic bass and drums in A minor, 8 bars.",
        "electric piano, acoustic bass, drums, key: A minor, bars: 8",
    ):
        assert check_prompt(text, WITHHELD) == [], text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Electric piano, acoustic bass and drums in A minor at 120 BPM.", "tempo is withheld"),
        ("Electric piano, acoustic bass and drums in A minor, bpm: 96.", "tempo is withheld"),
        ("Electric piano, acoustic bass and drums in A minor at a tempo of 100.", "tempo is withheld"),
        ("Electric piano, acoustic bass and drums in A minor at ninety beats per minute.", "tempo is withheld"),
        ("Electric piano, acoustic bass and drums in A minor, 8 bars at 8 BPM.", "tempo is withheld"),
        ("Electric piano, acoustic bass and drums in A minor, in 4/4.", "meter is withheld"),
        ("Electric piano, acoustic bass and drums in A minor, time signature: 3/4.", "meter is withheld"),
        ("Electric piano, acoustic bass and drums in A minor, in common time.", "meter is withheld"),
        ("Electric piano, acoustic bass and drums in A minor in a triple meter.", "meter is withheld"),
        ("Electric piano, acoustic bass and drums in A minor, 4 bars.", "states 4 bars"),
    ],
)
def test_a_withheld_bpm_or_meter_may_not_be_stated(text, reason):
    issues = check_prompt(text, WITHHELD)
    assert any(reason in i for i in issues), issues


def test_a_named_meter_must_be_the_clips():
    assert check_prompt(OK + ", in common time.", FACTS) == []  # FACTS is 4/4
    assert any("'waltz time'" in i for i in check_prompt(OK + ", in waltz time.", FACTS))


def test_withheld_key_bpm_and_meter_together():
    facts = clip_facts(make_clip(programs=((0, True),), key=None, bpm=None, time_signature=None))
    assert check_prompt("A punchy drum kit over 8 bars.", facts) == []
    assert any("states 2 bars" in i for i in check_prompt("A punchy drum kit, a two-bar phrase.", facts))
    for text in ("Drums in A minor.", "Drums at 174 BPM.", "Drums in 6/8."):
        assert check_prompt(text, facts) != [], text


def test_instrument_counts_must_not_exceed_the_clip():
    facts = clip_facts(make_clip(programs=((26, False), (27, False), (33, False), (0, True))))
    ok = "Two clean electric guitars, electric bass and drums in A minor at 120 BPM."
    assert check_prompt(ok, facts) == []
    assert check_prompt(ok.replace("Two clean", "2 warm clean"), facts) == []  # modifiers between
    for text, reason in (
        (ok.replace("Two", "Three"), "states 3 'clean electric guitars' but the clip has 2"),
        (ok.replace("electric bass", "two electric basses"), "states 2 'electric basses' but the clip has 1"),
        (ok + " Four drum kits.", "states 4 'drum kits'"),
    ):
        assert any(reason in i for i in check_prompt(text, facts)), text
    # Numbers that are not counts stay with the number rule: "a 4/4 drum groove" is the meter.
    assert check_prompt(ok + " A 4/4 drum groove over 8 bars.", facts) == []
    assert any("does not hold: 5" in i for i in check_prompt(ok + " 5 layers.", facts))


PIANO = "Solo piano in C major at 100 BPM"


@pytest.mark.parametrize(
    ("text", "tags", "reason"),
    [
        ("Smooth jazz piano in C major at 100 BPM.", [], "invents a genre 'jazz'"),
        (PIANO + ", a jazzy feel.", ["soul"], "invents a genre 'jazzy'"),
        (PIANO + " with a hip-hop groove.", ["rock"], "invents a genre 'hip hop'"),
        (PIANO + ", classical style.", [], "invents a genre 'classical'"),
        (PIANO + ", electronic and ambient.", [], "invents a genre 'electronic'"),
        (PIANO + ", a happy tune.", [], "invents a mood 'happy'"),
        (PIANO + ", melancholic and dreamy.", ["sad"], "invents a mood 'melancholic'"),
    ],
)
def test_genres_and_moods_must_be_in_the_genre_tags(text, tags, reason):
    facts = clip_facts(make_clip(programs=((0, False),), key="C major", bpm=100, genre_tags=tags))
    issues = check_prompt(text, facts)
    assert any(reason in i for i in issues), issues


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("Smooth jazz piano in C major at 100 BPM.", ["acid jazz"]),
        (PIANO + ", a jazzy feel.", ["jazz"]),
        (PIANO + " with a hip hop groove.", ["hip-hop"]),
        (PIANO + ", funky and soulful.", ["funk", "neo soul"]),
        (PIANO + ", melancholic.", ["melancholy"]),
        (PIANO + ", a chill vibe.", ["chillout"]),
        (PIANO + " over a rock-solid pulse.", []),  # "rock solid" is no genre
        (PIANO + ", warm and bright.", []),  # timbre words are not moods
    ],
)
def test_genres_and_moods_from_the_tags_pass(text, tags):
    facts = clip_facts(
        make_clip(programs=((0, False),), key="C major", bpm=100, genre_tags=tags, timbre=["warm", "bright"])
    )
    assert check_prompt(text, facts) == []


@pytest.mark.parametrize(
    ("program", "drum", "name"),
    [(26, False, "jazz guitar"), (18, False, "rock organ"), (23, False, "tango accordion"),
     (88, False, "new age pad"), (97, False, "soundtrack FX"), (32, True, "jazz drum kit"),
     (24, True, "electronic drum kit")],
)  # fmt: skip
def test_instrument_names_with_a_genre_word_are_no_genre(program, drum, name):
    facts = clip_facts(make_clip(programs=((program, drum),), key=None, bpm=100, genre_tags=[]))
    assert check_prompt(f"A {name} at 100 BPM.", facts) == [], name
    assert any("invents a genre" in i for i in check_prompt(f"A {name} at 100 BPM, jazz and rock.", facts))


def test_a_genre_word_before_another_instrument_is_a_genre():
    # A Drawbar Organ called a "rock organ": the instrument rule lets "rock" describe it; the genre rule does not.
    facts = clip_facts(make_clip(programs=((16, False),), key="C major", bpm=100, genre_tags=[]))
    assert any("invents a genre 'rock'" in i for i in check_prompt("A rock organ in C major, 100 BPM.", facts))
    tagged = clip_facts(make_clip(programs=((16, False),), key="C major", bpm=100, genre_tags=["classic rock"]))
    assert check_prompt("A rock organ in C major, 100 BPM.", tagged) == []
