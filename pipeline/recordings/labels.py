"""The labels file a person writes and edits: one row per audio file, CSV or JSONL.

Columns: file (relative to the recordings folder), artist, title, instruments, genre,
mood (lists: `;`-separated in CSV, arrays or `;`-strings in JSONL), key ("A minor",
"F# major", "Bbm"), bpm, meter ("4/4"), description, licence, attribution, and
`estimated`: the fields whose values an estimator wrote and nobody has confirmed yet.
A value not listed there is a hand label. Drafts add information columns (duration,
loudness, estimator confidences) that reading ignores.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.io.atomic import write_bytes
from pipeline.midi.keys import NOTE_NAMES, tonic_pc
from pipeline.records import ESTIMABLE_FIELDS, LABEL_FIELDS

LIST_FIELDS = ("instruments", "genre", "mood", "estimated")
INFO_COLUMNS = ("duration_s", "loudness_lufs", "bpm_confidence", "key_strength", "tag_scores", "note")
COLUMNS = ("file", *LABEL_FIELDS, "estimated", *INFO_COLUMNS)
_KEY = re.compile(r"^\s*([A-Ga-g])([#b♯♭]?)\s*(major|minor|maj|min|m|M)?\s*$")


def normalise_key(text: str) -> str:
    """'A minor', 'Am', 'f# maj', 'Bb' (major) -> the pipeline's spelling ('A minor', 'F# major', 'Bb major')."""
    m = _KEY.match(text)
    if not m:
        raise ValueError(f"not a key: {text!r} (write e.g. 'A minor', 'F# major', 'Bbm')")
    letter, accidental, mode = m.group(1).upper(), m.group(2).replace("♯", "#").replace("♭", "b"), m.group(3)
    scale = "minor" if mode in ("minor", "min", "m") else "major"
    return f"{NOTE_NAMES[tonic_pc(letter + accidental)]} {scale}"


class LabelRow(BaseModel):
    """One recording's labels as the file holds them (empty: unknown)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str = Field(min_length=1)
    artist: str | None = None
    title: str | None = None
    instruments: list[str] = Field(default_factory=list)
    genre: list[str] = Field(default_factory=list)
    mood: list[str] = Field(default_factory=list)
    key: str | None = None
    bpm: float | None = Field(None, gt=20, lt=400)
    meter: str | None = None
    description: str | None = None
    licence: str | None = None
    attribution: str | None = None
    estimated: list[str] = Field(default_factory=list)

    @field_validator("key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        return None if v is None else normalise_key(v)

    @field_validator("meter")
    @classmethod
    def _meter(cls, v: str | None) -> str | None:
        if v is None:
            return None
        m = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{1,2})\s*", v)
        if not m or int(m.group(2)) not in (1, 2, 4, 8, 16, 32) or int(m.group(1)) < 1:
            raise ValueError(f"not a meter: {v!r} (write e.g. '4/4', '6/8')")
        return f"{int(m.group(1))}/{int(m.group(2))}"

    @field_validator("estimated")
    @classmethod
    def _estimated(cls, v: list[str]) -> list[str]:
        bad = [f for f in v if f not in ESTIMABLE_FIELDS]
        if bad:
            raise ValueError(f"only {', '.join(ESTIMABLE_FIELDS)} can be estimated, not {bad}")
        return sorted(set(v))

    def hand_fields(self) -> list[str]:
        """Fields with a value a person gave (or confirmed by removing it from `estimated`)."""
        return [f for f in LABEL_FIELDS if hand_labelled(f, getattr(self, f), self.estimated)]


def hand_labelled(name: str, value: object, estimated: list[str]) -> bool:
    """The one rule for a hand label: the field has a value and is not marked `estimated`
    (for a LabelRow and for a draft row still being built as a dict)."""
    return filled(value) and name not in estimated


def filled(value: object) -> bool:
    """A label field holds a value (empty strings and lists are unknown)."""
    return value not in (None, "", [])


@dataclass(frozen=True)
class LabelsFile:
    rows: dict[str, LabelRow]  # by file, as written (relative, '/'-separated)
    errors: list[tuple[str, str]]  # (where, why): a row that cannot be used


def _clean(raw: dict[str, object]) -> dict[str, object]:
    """Drop information columns and empty cells; split `;`-lists; keep the rest for validation."""
    out: dict[str, object] = {}
    for k, v in raw.items():
        if k is None or k in INFO_COLUMNS:
            continue
        key = str(k).strip()
        if isinstance(v, str):
            v = v.strip()
        if v in (None, "", []):
            continue
        if key in LIST_FIELDS and isinstance(v, str):
            v = [w.strip() for w in v.split(";") if w.strip()]
        out[key] = v
    return out


def read_labels(path: Path) -> LabelsFile:
    """Every row that validates; the others as errors naming the line and the reason."""
    if not path.exists():
        return LabelsFile({}, [])
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".jsonl":
        raw_rows: list[tuple[str, object]] = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                raw_rows.append((f"{path.name}:{n}", json.loads(line)))
            except json.JSONDecodeError as e:
                raw_rows.append((f"{path.name}:{n}", f"not JSON ({e.msg})"))
    elif path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        raw_rows = [(f"{path.name}:{n}", row) for n, row in enumerate(reader, 2)]
    else:
        raise ValueError(f"labels file must be .csv or .jsonl: {path}")
    rows: dict[str, LabelRow] = {}
    errors: list[tuple[str, str]] = []
    for where, raw in raw_rows:
        if not isinstance(raw, dict):
            errors.append((where, raw if isinstance(raw, str) else "not an object"))
            continue
        cleaned = _clean(raw)
        name = str(cleaned.get("file", "")).replace("\\", "/")
        try:
            row = LabelRow.model_validate({**cleaned, "file": name})
        except ValidationError as e:
            why = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'row'}: {err['msg']}" for err in e.errors())
            errors.append((f"{where} ({name or 'no file'})", why))
            continue
        if row.file in rows:
            errors.append((f"{where} ({row.file})", "a second row for the same file (the first one is used)"))
            continue
        rows[row.file] = row
    return LabelsFile(rows, errors)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def write_labels(path: Path, rows: list[dict[str, object]]) -> None:
    """Rows (LabelRow fields plus information columns) as CSV or JSONL, atomically, in the given order."""
    if path.suffix.lower() == ".jsonl":
        lines = [json.dumps({k: v for k, v in r.items() if filled(v)}, ensure_ascii=False) for r in rows]
        write_bytes(path, ("\n".join(lines) + "\n").encode())
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _cell(r.get(k)) for k in COLUMNS})
    write_bytes(path, buf.getvalue().encode())
