"""How rendered MIDI and recordings are weighted in the training set (finetune.recordings_share).

Each source's train clips are repeated a whole number of times so that recorded hours
make up the share asked for (the reference fine-tune's real recordings were a third of
its data). Repeats, not dropped clips: nothing the pipeline made is thrown away, and
the same inputs always give the same list. Validation is never weighted.

Runs in .venv (no torch): the stage computes the repeats, the training process applies them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.train.clips import TrainClip

SOURCES = ("midi", "recording")
MAX_REPEAT = 64  # a share that needs more repeats than this is reported as not reached


@dataclass(frozen=True)
class Mixture:
    repeats: dict[str, int]  # per source
    hours: dict[str, float]  # distinct train hours per source
    weighted_hours: dict[str, float]  # hours the training draws from, repeats counted
    target_share: float | None

    @property
    def share(self) -> float | None:
        total = sum(self.weighted_hours.values())
        return round(self.weighted_hours["recording"] / total, 4) if total > 0 else None

    def as_dict(self) -> dict[str, object]:
        return {
            "recordings_share_target": self.target_share,
            "recordings_share": self.share,
            "source_repeats": self.repeats,
            "train_hours_by_source": self.hours,
            "weighted_train_hours_by_source": self.weighted_hours,
        }


def mixture(clips: Sequence[TrainClip], source_of: Mapping[str, str], share: float | None) -> Mixture:
    """The repeats per source that bring the recorded share of train hours nearest `share` (None: 1 each)."""
    hours = {s: 0.0 for s in SOURCES}
    for c in clips:
        if c.split == "train":
            hours[source_of.get(c.id, "midi")] += c.duration_s / 3600
    repeats = {s: 1 for s in SOURCES}
    if share is not None and hours["midi"] > 0 and hours["recording"] > 0:
        ratio = share * hours["midi"] / ((1 - share) * hours["recording"])  # recording repeats per MIDI repeat
        if ratio >= 1:
            repeats["recording"] = min(MAX_REPEAT, max(1, round(ratio)))
        else:
            repeats["midi"] = min(MAX_REPEAT, max(1, round(1 / ratio)))
    weighted = {s: round(hours[s] * repeats[s], 4) for s in SOURCES}
    return Mixture(repeats, {s: round(h, 4) for s, h in hours.items()}, weighted, share)


def repeat_of(clip: TrainClip, source_of: Mapping[str, str], m: Mixture) -> int:
    """How many times a clip is drawn per epoch (validation clips: once)."""
    return m.repeats[source_of.get(clip.id, "midi")] if clip.split == "train" else 1
