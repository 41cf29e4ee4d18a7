"""finetune.recordings_share: whole repeats of one source bring recorded hours nearest the share asked for."""

from __future__ import annotations

import pytest

from pipeline.params import parse_params
from pipeline.train.clips import TrainClip
from pipeline.train.mixture import MAX_REPEAT, mixture, repeat_of


def _clip(i: int, split: str, seconds: float) -> TrainClip:
    return TrainClip(id=f"s{i}/c000", split=split, audio=f"a{i}.wav", prompt="p", seconds_start=0.0,
                     seconds_total=seconds, duration_s=seconds)  # fmt: skip


def _corpus(midi_s: float, rec_s: float) -> tuple[list[TrainClip], dict[str, str]]:
    clips = [_clip(0, "train", midi_s), _clip(1, "train", rec_s), _clip(2, "validation", 5.0)]
    return clips, {"s0/c000": "midi", "s1/c000": "recording", "s2/c000": "recording"}


@pytest.mark.parametrize(
    ("midi_s", "rec_s", "share", "repeats", "achieved"),
    [
        (300.0, 100.0, 0.5, {"midi": 1, "recording": 3}, 0.5),  # too few recordings: they repeat
        (100.0, 300.0, 0.25, {"midi": 9, "recording": 1}, 0.25),  # too many: the renders repeat
        (200.0, 100.0, 1 / 3, {"midi": 1, "recording": 1}, 1 / 3),  # already there
        (300.0, 100.0, None, {"midi": 1, "recording": 1}, 0.25),  # off: as made
    ],
)
def test_repeats_reach_the_share(midi_s, rec_s, share, repeats, achieved):
    clips, sources = _corpus(midi_s, rec_s)
    m = mixture(clips, sources, share)
    assert m.repeats == repeats and m.share == pytest.approx(achieved, abs=1e-3)
    assert m.hours == {"midi": round(midi_s / 3600, 4), "recording": round(rec_s / 3600, 4)}  # validation left out
    assert repeat_of(clips[2], sources, m) == 1  # validation is never weighted


def test_one_source_only_or_an_unreachable_share_is_reported_not_forced():
    clips, sources = _corpus(300.0, 100.0)
    assert mixture(clips[:1], sources, 0.5).repeats == {"midi": 1, "recording": 1}  # no recordings to weight
    m = mixture([_clip(0, "train", 10_000.0), _clip(1, "train", 1.0)], sources, 0.9)
    assert m.repeats["recording"] == MAX_REPEAT and m.share < 0.9


def test_the_share_param_is_a_proper_fraction():
    assert parse_params({"finetune": {"recordings_share": 0.33}}).finetune.recordings_share == 0.33
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError, match="recordings_share"):
            parse_params({"finetune": {"recordings_share": bad}})
