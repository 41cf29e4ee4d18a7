"""Typed, validated params.yaml: one model per stage section plus `run`.

An unknown key or a bad value stops a stage before any work, with a message
naming the key, the value given and what is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class ConfigError(ValueError):
    """The run is configured wrongly (a missing input folder, an unknown work, ...)."""


class ParamsError(ConfigError):
    """params.yaml is malformed or holds a key or value the pipeline does not accept."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunParams(Section):
    seed: int = Field(1234, ge=0, description="global seed; every random choice derives from it")
    workers: int | Literal["auto"] = Field("auto", description="processes for per-item work")

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("must be 'auto' or an integer >= 1")
        return v

    def n_workers(self) -> int:
        return (os.cpu_count() or 1) if self.workers == "auto" else int(self.workers)


class SampleParams(Section):
    songs: int = Field(24, ge=1, le=240, description="songs in the embedded sample (24 covers all keys)")


class Music21Params(Section):
    composer: str = Field("bach", min_length=1, description="music21 corpus composer to read")
    works: list[str] = Field(default_factory=list, description="corpus paths; empty = all of the composer's")
    limit: int | None = Field(24, ge=1, description="at most this many works")
    programs: list[int] = Field(
        default_factory=lambda: [40, 40, 41, 42],
        min_length=1,
        description="GM program per part, in score order (cycled); default string quartet",
    )

    @field_validator("programs")
    @classmethod
    def _programs(cls, v: list[int]) -> list[int]:
        bad = [p for p in v if not 0 <= p <= 127]
        if bad:
            raise ValueError(f"must be GM programs 0-127; {bad} are not")
        return v


class DedupeParams(Section):
    lakh_versions: bool = Field(True, description="keep one of <Title>.mid, <Title>.1.mid, ...")
    same_notes: bool = Field(True, description="drop files whose notes equal another file's")


class IngestParams(Section):
    source: Literal["sample", "lakh", "music21", "dir"] = "sample"
    path: str = Field("data/raw", min_length=1, description="input folder for lakh and dir")
    limit: int | None = Field(None, ge=1, description="at most this many songs (first by path)")
    sample: SampleParams = SampleParams()
    music21: Music21Params = Music21Params()
    dedupe: DedupeParams = DedupeParams()


class SplitParams(Section):
    min_tempo_bpm: float = Field(10.0, gt=0, description="tempos below this are rejected as corrupt")
    max_tempo_bpm: float = Field(1000.0, gt=0, description="tempos above this are rejected as corrupt")
    max_duration_s: float = Field(3600.0, gt=0, description="longer files are rejected")
    min_notes_per_track: int = Field(1, ge=1, description="tracks with fewer notes are dropped")
    legato_overlap_s: float = Field(0.05, ge=0, description="overlaps up to this long count as legato, not as chords")

    @model_validator(mode="after")
    def _range(self) -> SplitParams:
        if self.min_tempo_bpm >= self.max_tempo_bpm:
            raise ValueError(f"min_tempo_bpm ({self.min_tempo_bpm}) must be below max_tempo_bpm ({self.max_tempo_bpm})")
        return self


class Params(Section):
    run: RunParams = RunParams()
    ingest: IngestParams = IngestParams()
    split: SplitParams = SplitParams()


def _field_path(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], list[str]]:
    """Trim pydantic's loc to real keys (dropping union-member tags) and list the
    keys allowed beside the last one."""
    path: list[Any] = []
    current: Any = model
    allowed: list[str] = sorted(model.model_fields)
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if isinstance(part, str) and fields is not None:
            allowed = sorted(fields)
            path.append(part)
            field = fields.get(part)
            current = field.annotation if field is not None else None
        elif isinstance(part, int):
            path.append(part)
            current = None
        else:
            break
    return tuple(path), allowed


def _lookup(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def format_errors(exc: ValidationError, data: Any, source: str) -> str:
    """One line per bad key: the key, the value given and what is allowed."""
    problems: dict[str, list[str]] = {}
    for err in exc.errors():
        loc, allowed = _field_path(Params, tuple(err["loc"]))
        key = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            line = f"unknown key '{key}' (allowed here: {', '.join(allowed) or 'none'})"
            problems.setdefault(line, [])
        else:
            line = f"'{key}' = {_lookup(data, loc)!r}"
            msg = err["msg"].removeprefix("Value error, ")
            if msg not in problems.setdefault(line, []):
                problems[line].append(msg)
    out = [f"{source}: invalid params"]
    for line, msgs in problems.items():
        out.append(f"  - {line}: {' or '.join(msgs)}" if msgs else f"  - {line}")
    return "\n".join(out)


def parse_params(data: Any, source: str = "params.yaml") -> Params:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        raise ParamsError(format_errors(exc, data, source)) from None


def load_params(path: Path | str = "params.yaml") -> Params:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    return parse_params(data, str(path))
