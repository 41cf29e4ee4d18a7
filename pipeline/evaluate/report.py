"""The evaluation's records and figures: one typed record per measured audio file (the
index of the generated audio, and of the test clips measured against their labels), the
summary (every figure per model, the differences, the reference's published table
beside ours) and the plot tables."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from pipeline.evaluate.grid import EvalPrompt
from pipeline.evaluate.measure import Measurement
from pipeline.evaluate.metrics import key_exact, key_scores, mean, tempo_hits, tempo_scores
from pipeline.records import Clip, Record

TEST_CLIPS = "test-clips"  # the pseudo-model whose "generations" are the test split's real clips
Group = Literal["tempo", "key", "dataset", "real"]

# SAO Instrumental Finetune's published table (deeprhythm tempo at 2%, essentia key+scale).
REFERENCE = {
    "sao_instrumental_finetune": {"tempo_acc1_2pct": 0.876, "tempo_acc2_2pct": 0.953, "key_exact": 0.26},
    "stable_audio_open": {"tempo_acc1_2pct": 0.747, "tempo_acc2_2pct": 0.776, "key_exact": 0.21},
}
REFERENCE_PROTOCOL = (
    "two prompts (rock, jazz) per tempo 75-160 BPM, tempo by deeprhythm, Acc1/Acc2 within 2%; "
    "8 prompts per key (24 keys) across rock, jazz, hip hop, pop, key and scale by essentia"
)


class EvalItem(Record):
    """One measured audio file: a generation of a model for a grid prompt, or a real test clip."""

    model: str = Field(description=f"the model, or '{TEST_CLIPS}' for the test split's real clips")
    prompt_id: str = Field(description="the grid prompt (or the clip id for a real clip)")
    group: Group
    genre: str
    style: str = Field(description="'reference', a prompt style, or 'label' for a real clip")
    prompt: str | None
    seed: int | None
    seconds: float = Field(gt=0)
    target_bpm: float | None = Field(description="requested (or, for a real clip, labelled) tempo")
    target_key: str | None = Field(description="requested (or labelled) key")
    audio: str = Field(description="relative path of the WAV")
    tempo_bpm: dict[str, float | None] = Field(description="measured tempo per estimator")
    key: str | None = Field(description="measured key (essentia)")
    key_strength: float | None
    note: str | None = None


@dataclass(frozen=True)
class Job:
    """One audio file to measure, and the record fields it will carry."""

    id: str
    model: str
    audio: str
    fields: dict[str, Any]

    def item(self, m: Measurement) -> EvalItem:
        measured = {"tempo_bpm": m.tempo_bpm, "key": m.key, "key_strength": m.key_strength, "note": m.note}
        return EvalItem(id=self.id, model=self.model, audio=self.audio, **measured, **self.fields)


def prompt_jobs(model: str, prompts: Sequence[EvalPrompt], audio_dir: str) -> list[Job]:
    """A model's generations (written as <audio_dir>/<model>/<prompt id>.wav)."""
    return [
        Job(
            f"{model}/{p.id}",
            model,
            f"{audio_dir}/{model}/{p.id}.wav",
            {**p.model_dump(exclude={"id", "source_clip"}), "prompt_id": p.id},
        )
        for p in prompts
    ]


def clip_jobs(clips: Sequence[Clip]) -> list[Job]:
    """The test split's mix clips that state a key or a BPM, measured against those labels."""
    real = sorted((c for c in clips if c.split == "test" and c.kind == "mix" and (c.key or c.bpm)), key=lambda c: c.id)
    return [
        Job(
            f"{TEST_CLIPS}/{c.id}",
            TEST_CLIPS,
            c.audio,
            {
                "prompt_id": c.id,
                "group": "real",
                "genre": next(iter(c.genre_tags), "none"),
                "style": "label",
                "prompt": None,
                "seed": None,
                "seconds": c.seconds_total,
                "target_bpm": c.bpm,
                "target_key": c.key,
            },
        )
        for c in real
    ]


def _tempo_pairs(items: Sequence[EvalItem], estimator: str) -> list[tuple[float | None, float]]:
    return [(i.tempo_bpm.get(estimator), i.target_bpm) for i in items if i.target_bpm is not None]


def _key_pairs(items: Sequence[EvalItem]) -> list[tuple[str | None, str]]:
    return [(i.key, i.target_key) for i in items if i.target_key is not None]


def _headline(items: Sequence[EvalItem], primary: str, tolerances: Sequence[float]) -> dict:
    """Tempo (primary estimator) and key figures over some items."""
    return {"tempo": tempo_scores(_tempo_pairs(items, primary), tolerances), "key": key_scores(_key_pairs(items))}


def _breakdown(items: Sequence[EvalItem], attr: str, primary: str, tolerances: Sequence[float]) -> dict:
    """Flat figures per value of `attr` (genre or style): tempo Acc1/Acc2, key exact/only/weighted."""
    out = {}
    for value in sorted({getattr(i, attr) for i in items}):
        sub = [i for i in items if getattr(i, attr) == value]
        h = _headline(sub, primary, tolerances)
        flat = {f"tempo_{k}": v for k, v in h["tempo"].items() if k != "n"}
        flat |= {f"key_{k}" if k != "key_only" else k: v for k, v in h["key"].items() if k != "n"}
        flat["n"] = len(sub)
        out[value] = flat
    return out


def model_figures(items: Sequence[EvalItem], estimators: Sequence[str], tolerances: Sequence[float]) -> dict:
    """Every figure of one model: the reference protocol, our dataset grid, per genre and per style."""
    primary = estimators[0]
    ref_tempo = [i for i in items if i.group == "tempo"]
    ref_key = [i for i in items if i.group == "key"]
    dataset = [i for i in items if i.group in ("dataset", "real")]
    out = {
        "items": len(items),
        "reference_protocol": {
            "tempo": tempo_scores(_tempo_pairs(ref_tempo, primary), tolerances),
            "key": key_scores(_key_pairs(ref_key)),
        },
        "dataset_prompts": _headline(dataset, primary, tolerances),
        "by_genre": _breakdown(ref_tempo + ref_key + dataset, "genre", primary, tolerances),
        "by_style": _breakdown(dataset, "style", primary, tolerances) if dataset else {},
    }
    if len(estimators) > 1:
        out["tempo_by_estimator"] = {
            e: tempo_scores(_tempo_pairs([i for i in items if i.group != "key"], e), tolerances) for e in estimators
        }
    return out


def _table_row(fig: dict) -> dict:
    """The reference's three figures (plus ours at 4%) from one model's figures."""
    t, k = fig["reference_protocol"]["tempo"], fig["reference_protocol"]["key"]
    row = {
        "tempo_acc1_2pct": t.get("acc1_2pct"),
        "tempo_acc2_2pct": t.get("acc2_2pct"),
        "key_exact": k["exact"],
    }
    row |= {f"tempo_{m}": t[m] for m in ("acc1_4pct", "acc2_4pct") if m in t}
    row |= {"key_only": k["key_only"], "key_weighted": k["weighted"]}
    return row


def _difference(a: dict, b: dict) -> dict:
    return {k: (round(a[k] - b[k], 4) if a.get(k) is not None and b.get(k) is not None else None) for k in a}


def summarize(
    items: Sequence[EvalItem],
    models: Sequence[str],
    estimators: Sequence[str],
    tolerances: Sequence[float],
) -> dict:
    """Figures per model (and for the test clips), the headline table with the reference's
    published rows beside ours, and each model's difference to the first (the fine-tune)."""
    figures = {m: model_figures([i for i in items if i.model == m], estimators, tolerances) for m in models}
    real = [i for i in items if i.model == TEST_CLIPS]
    table = {m: _table_row(figures[m]) for m in models if figures[m]["items"]}
    differences = {}
    if models and models[0] in table:
        for m in models[1:]:
            if m in table:
                differences[f"{models[0]}_minus_{m}"] = _difference(table[models[0]], table[m])
    return {
        "models": figures,
        "test_clips": {
            "items": len(real),
            "labels_vs_audio": _headline(real, estimators[0], tolerances),
            "by_genre": _breakdown(real, "genre", estimators[0], tolerances),
        },
        "table": {**table, **{f"published_{k}": v for k, v in REFERENCE.items()}},
        "differences": differences,
    }


def _csv(rows: list[dict], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def tempo_table(items: Sequence[EvalItem], estimator: str) -> str:
    """requested vs measured BPM, one row per item with a requested tempo."""
    rows = [
        {"id": i.prompt_id, "requested_bpm": i.target_bpm, "measured_bpm": i.tempo_bpm.get(estimator)}
        for i in items
        if i.target_bpm is not None and i.tempo_bpm.get(estimator) is not None
    ]
    return _csv(rows, ["id", "requested_bpm", "measured_bpm"])


def key_table(items: Sequence[EvalItem]) -> str:
    """requested vs measured key (a confusion matrix for `dvc plots`)."""
    rows = [
        {"id": i.prompt_id, "requested": i.target_key, "measured": i.key or "none"}
        for i in items
        if i.target_key is not None
    ]
    return _csv(rows, ["id", "requested", "measured"])


def genre_tables(items: Sequence[EvalItem], models: Sequence[str], estimator: str, tolerance: float) -> dict[str, str]:
    """Per model and genre: tempo Acc1 at `tolerance` ('tempo') and key+scale accuracy ('key')."""
    tempo_rows, key_rows = [], []
    for m in models:
        mine = [i for i in items if i.model == m]
        for genre in sorted({i.genre for i in mine}):
            sub = [i for i in mine if i.genre == genre]
            tempo = [tempo_hits(i.tempo_bpm.get(estimator), i.target_bpm, tolerance)[0] for i in sub if i.target_bpm]
            keys = [key_exact(i.key, i.target_key) for i in sub if i.target_key]
            if tempo:
                tempo_rows.append({"model_genre": f"{m}: {genre}", "tempo_acc1": mean(tempo), "n": len(tempo)})
            if keys:
                key_rows.append({"model_genre": f"{m}: {genre}", "key_exact": mean(keys), "n": len(keys)})
    return {
        "tempo": _csv(tempo_rows, ["model_genre", "tempo_acc1", "n"]),
        "key": _csv(key_rows, ["model_genre", "key_exact", "n"]),
    }
