"""The labels file as Label Studio audio tasks, and back, so a team can label in a tool it knows.

Export: one task per row. `data` holds the audio URL and the file name. The person's
labels go in as an annotation, the estimates as a prediction (model_version
`midi2finetune-estimates`), so a labeller sees what to confirm. `LABEL_CONFIG` is the
project's labeling interface: a control per field, named as the labels file's columns.

Import (Label Studio's JSON export): per task, the latest annotation that was not
cancelled holds the hand labels; a field that only a prediction holds stays an
estimate. Lists (instruments, genre, mood) are one entry per line of a TextArea.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.io.atomic import write_bytes
from pipeline.midi.keys import NOTE_NAMES
from pipeline.recordings.labels import LIST_FIELDS, LabelRow, filled
from pipeline.records import ESTIMABLE_FIELDS, LABEL_FIELDS

MODEL_VERSION = "midi2finetune-estimates"
KEYS = tuple(f"{t} {s}" for s in ("major", "minor") for t in NOTE_NAMES)
_TEXT_FIELDS = tuple(f for f in LABEL_FIELDS if f not in ("key", "bpm"))


def label_config() -> str:
    """The labeling interface (XML) whose control names match the labels file's columns."""
    choices = "\n".join(f'      <Choice value="{k}"/>' for k in KEYS)
    single = ' maxSubmissions="1"'
    texts = "\n".join(
        f'  <Header value="{f}{" (one per line)" if f in LIST_FIELDS else ""}"/>\n'
        f'  <TextArea name="{f}" toName="audio" editable="true"{"" if f in LIST_FIELDS else single}/>'
        for f in _TEXT_FIELDS
    )
    return (
        '<View>\n  <Audio name="audio" value="$audio"/>\n'
        '  <Header value="key"/>\n  <Choices name="key" toName="audio" choice="single">\n'
        f"{choices}\n  </Choices>\n"
        '  <Header value="bpm"/>\n  <Number name="bpm" toName="audio" min="20" max="400" step="0.01"/>\n'
        f"{texts}\n</View>\n"
    )


def _result(field: str, value: Any) -> dict[str, Any]:
    base = {"from_name": field, "to_name": "audio", "id": field}
    if field == "key":
        return {**base, "type": "choices", "value": {"choices": [value]}}
    if field == "bpm":
        return {**base, "type": "number", "value": {"number": value}}
    text = list(value) if field in LIST_FIELDS else [str(value)]
    return {**base, "type": "textarea", "value": {"text": text}}


def export_tasks(rows: list[LabelRow], audio_url: Callable[[str], str],
                 scores: dict[str, float] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Tasks for Label Studio's import: hand labels as an annotation, estimates as a prediction
    (`scores`: file -> the estimator's confidence, shown as the prediction's score)."""
    tasks = []
    for row in rows:
        hand = [_result(f, getattr(row, f)) for f in row.hand_fields()]
        guess = [_result(f, getattr(row, f)) for f in row.estimated if filled(getattr(row, f))]
        task: dict[str, Any] = {"data": {"audio": audio_url(row.file), "file": row.file}}
        if hand:
            task["annotations"] = [{"result": hand}]
        if guess:
            prediction: dict[str, Any] = {"model_version": MODEL_VERSION, "result": guess}
            if scores and row.file in scores:
                prediction["score"] = scores[row.file]
            task["predictions"] = [prediction]
        tasks.append(task)
    return tasks


def _values(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in results:
        field, value = r.get("from_name"), r.get("value", {})
        if field == "key" and value.get("choices"):
            out["key"] = value["choices"][0]
        elif field == "bpm" and value.get("number") is not None:
            out["bpm"] = value["number"]
        elif field in _TEXT_FIELDS and value.get("text") is not None:
            lines = [line.strip() for t in value["text"] for line in str(t).splitlines() if line.strip()]
            if lines:
                out[field] = lines if field in LIST_FIELDS else " ".join(lines)
    return out


def import_tasks(tasks: list[dict[str, Any]]) -> tuple[list[LabelRow], list[tuple[str, str]]]:
    """Rows from Label Studio's JSON export, and (task, why) for tasks that cannot become a row."""
    rows, errors = [], []
    for n, task in enumerate(tasks):
        data = task.get("data", {})
        file = data.get("file")
        where = f"task {task.get('id', n)}"
        if not file:
            errors.append((where, "no data.file: not a task this pipeline exported"))
            continue
        done = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
        hand = _values(done[-1].get("result", [])) if done else {}
        guessed = {}
        for p in task.get("predictions", []):
            guessed.update(_values(p.get("result", [])))
        estimated = sorted(f for f in guessed if f not in hand and f in ESTIMABLE_FIELDS)
        try:
            rows.append(LabelRow.model_validate({"file": file, **hand, **{f: guessed[f] for f in estimated},
                                                 "estimated": estimated}))  # fmt: skip
        except ValueError as e:
            errors.append((f"{where} ({file})", str(e).splitlines()[0] if str(e) else "invalid"))
    return rows, errors


def write_tasks(path: Path, tasks: list[dict[str, Any]]) -> None:
    write_bytes(path, (json.dumps(tasks, indent=1, ensure_ascii=False) + "\n").encode())
