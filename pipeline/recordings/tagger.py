"""Genre and mood drafts for recordings, from an audio tagger whose weights ship in a package.

musicnn's MSD_musicnn model (trained on the Million Song Dataset's 50 most common tags; weights
inside the `musicnn` wheel) runs in its own interpreter, `recordings.tagger.python` (`make
tagger-env`: TensorFlow cannot share this environment's pins), through pipeline/analysis/musicnn.py.
Of its 50 tags, 29 are genres and 9 moods here; decades, vocalists, `instrumental`, `acoustic`
and `guitar` say nothing a genre or mood field should hold and are dropped.

A draft is never a label: draft rows mark tagged genre and mood `estimated`, and a run uses
only what a person kept by removing the field from `estimated` (pipeline/recordings/song.py).
"""

from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pipeline.params import TaggerParams
from pipeline.recordings.labels import hand_labelled

# MSD tag -> the word a labels file holds.
GENRES: dict[str, str] = {
    "rock": "rock", "pop": "pop", "alternative": "alternative", "indie": "indie", "electronic": "electronic",
    "dance": "dance", "alternative rock": "alternative rock", "jazz": "jazz", "metal": "metal",
    "classic rock": "classic rock", "soul": "soul", "indie rock": "indie rock", "electronica": "electronica",
    "folk": "folk", "punk": "punk", "blues": "blues", "hard rock": "hard rock", "ambient": "ambient",
    "experimental": "experimental", "Hip-Hop": "hip hop", "country": "country", "easy listening": "easy listening",
    "funk": "funk", "electro": "electro", "heavy metal": "heavy metal", "Progressive rock": "progressive rock",
    "rnb": "r&b", "indie pop": "indie pop", "House": "house",
}  # fmt: skip
MOODS: dict[str, str] = {
    "beautiful": "beautiful", "chillout": "chill", "chill": "chill", "Mellow": "mellow", "party": "party",
    "sexy": "sexy", "catchy": "catchy", "sad": "sad", "happy": "happy",
}  # fmt: skip


@dataclass(frozen=True)
class TagDraft:
    """What the tagger proposes for one file, and the scores behind it (an information column)."""

    genre: list[str]
    mood: list[str]
    scores: dict[str, float] = field(default_factory=dict)  # proposed words and the best near-misses

    def note(self) -> str:
        return "; ".join(f"{w} {s:.2f}" for w, s in self.scores.items())


def _pick(probs: dict[str, float], vocab: dict[str, str], p: TaggerParams, limit: int) -> tuple[list[str], dict]:
    """The words whose tag's mean probability reaches p.min_probability, best first, at most `limit`
    (two MSD tags naming one word count once, at the higher probability)."""
    best: dict[str, float] = {}
    for tag, word in vocab.items():
        if tag in probs:
            best[word] = max(best.get(word, 0.0), probs[tag])
    ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
    chosen = [w for w, s in ranked if s >= p.min_probability][:limit]
    shown = {w: round(s, 3) for w, s in ranked[: max(limit, 1) + 1]}
    return chosen, shown


def draft_tags(probabilities: list[float], tags: list[str], p: TaggerParams) -> TagDraft:
    """Genre and mood words from one file's mean tag probabilities."""
    probs = dict(zip(tags, probabilities, strict=True))
    genre, g_scores = _pick(probs, GENRES, p, p.max_genres)
    mood, m_scores = _pick(probs, MOODS, p, p.max_moods)
    return TagDraft(genre, mood, {**g_scores, **m_scores})


class TaggerError(RuntimeError):
    """The tagger could not run at all (no interpreter, a crash, a timeout): no drafts, the reason."""


def _interpreter(p: TaggerParams, root: Path) -> Path:
    python = Path(p.python).expanduser()
    return python if python.is_absolute() else root / python


def run_tagger(files: list[Path], p: TaggerParams, root: Path) -> dict[Path, TagDraft | str]:
    """Tag every file, the model loaded once per tagger process. A file the tagger could not read,
    found silent, crashed on or spent longer than `p.timeout_s` on gets the reason instead of a
    draft; the tagger then restarts for the files after it. TaggerError when it cannot run at all."""
    if not files:
        return {}
    python = _interpreter(p, root)
    if not python.exists():
        raise TaggerError(f"recordings.tagger.python: {python} not found (run `make tagger-env`, or set it to "
                          f"a Python with tensorflow and musicnn)")  # fmt: skip
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding `pipeline`
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    out: dict[Path, TagDraft | str] = {}
    todo = list(files)
    while todo:  # each process reaches at least one file, or raises
        done = _one_process(python, todo, p, env)
        out.update(done)
        todo = todo[len(done) :]
    return out


def _lines(stream: IO[str], into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _one_process(python: Path, files: list[Path], p: TaggerParams, env: dict[str, str]) -> dict[Path, TagDraft | str]:
    """One tagger process over `files`, in order, until it ends or a file stops it: the results
    of the files it reached (the one that stopped it holds the reason). Raises TaggerError when it
    stops before its model is loaded."""
    try:
        proc = subprocess.Popen([str(python), "-m", "pipeline.analysis.musicnn"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    except OSError as exc:
        raise TaggerError(f"cannot start the tagger {python}: {exc}") from None
    lines: queue.Queue[str | None] = queue.Queue()
    errors: collections.deque[str] = collections.deque(maxlen=5)
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    stderr = threading.Thread(target=lambda: errors.extend(proc.stderr or ()), daemon=True)
    stderr.start()
    try:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"files": [str(f) for f in files], "max_s": p.max_s}))
        proc.stdin.close()
    except OSError:
        pass  # it died at once: the empty output below says why
    out: dict[Path, TagDraft | str] = {}
    tags: list[str] | None = None
    try:
        while len(out) < len(files):
            waiting = files[len(out)] if tags is not None else None
            try:
                line = lines.get(timeout=p.timeout_s)
            except queue.Empty:
                if waiting is None:
                    raise TaggerError(f"the tagger did not load its model within recordings.tagger.timeout_s "
                                      f"({p.timeout_s:g} s)") from None  # fmt: skip
                out[waiting] = f"the tagger took longer than recordings.tagger.timeout_s ({p.timeout_s:g} s)"
                break
            if line is None:  # the process ended
                code = proc.wait()
                stderr.join(timeout=5)
                last = " ".join(e.strip() for e in list(errors)[-1:]) or f"exit {code}"
                if waiting is None:
                    raise TaggerError(f"the tagger ({python}) failed: {last}")
                out[waiting] = f"the tagger process died on this file: {last}"
                break
            if tags is None:
                tags = _header(line)
                continue
            out[files[len(out)]] = _result(line, tags, p)
    finally:
        proc.kill()
        proc.wait()
    return out


def _header(line: str) -> list[str]:
    try:
        tags = list(json.loads(line)["tags"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TaggerError(f"the tagger's output is not what pipeline.analysis.musicnn writes: {exc}") from None
    missing = sorted(t for t in (*GENRES, *MOODS) if t not in tags)
    if missing:  # a renamed tag would silently never be drafted
        raise TaggerError(f"the tagger has no tags {missing}: pipeline/recordings/tagger.py's tables are out of date")
    return tags


def _result(line: str, tags: list[str], p: TaggerParams) -> TagDraft | str:
    try:
        result = json.loads(line)
        probs, error = result["probabilities"], result["error"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"the tagger's output is not what pipeline.analysis.musicnn writes: {exc}"
    if error:
        return f"the tagger could not read it: {error}"
    return draft_tags(probs, tags, p) if probs is not None else "nothing audible to tag"


def with_tag_draft(row: dict[str, object], draft: TagDraft | str | None) -> dict[str, object]:
    """A draft labels row with the tagger's genre and mood in every field a person has not filled
    (or left marked `estimated`), those marked `estimated`, and the scores in `tag_scores`."""
    if not isinstance(draft, TagDraft):  # no draft, or the reason there is none
        return row
    estimated = [str(f) for f in row.get("estimated") or []]  # type: ignore[attr-defined]
    out = dict(row)
    for name, words in (("genre", draft.genre), ("mood", draft.mood)):
        if hand_labelled(name, row.get(name), estimated):
            continue
        out[name] = list(words)
        estimated = [f for f in estimated if f != name] + ([name] if words else [])
    out["estimated"] = sorted(estimated)
    out["tag_scores"] = draft.note()
    return out
