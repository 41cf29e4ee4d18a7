"""Where songs come from. Each source yields candidates in a stable order."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from pipeline.errors import ConfigError, ItemError
from pipeline.midi.keys import NOTE_NAMES, key_label
from pipeline.midi.load import parse_midi
from pipeline.midi.write import instruments_to_midi
from pipeline.params import IngestParams
from pipeline.records import Source

MIDI_SUFFIXES = (".mid", ".midi")
_LAKH_VERSION = re.compile(r"^(?P<title>.+)\.(?P<version>\d+)$")


@dataclass(frozen=True)
class Candidate:
    """A file (or generated song) before probing; `group` ties Lakh versions together."""

    origin: str
    source: Source
    artist: str
    title: str
    group: str
    version: int = 0
    path: str | None = None  # absolute path to read (lakh, dir, music21)
    data: bytes | None = None  # bytes already in hand (sample)
    truth: dict | None = None


def _midi_files(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and name.lower().endswith(MIDI_SUFFIXES):
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _stem(name: str) -> str:
    for suffix in MIDI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def discover_lakh(root: Path) -> list[Candidate]:
    """Lakh clean_midi layout: `<Artist>/<Title>.mid`, other versions `<Title>.1.mid`, ..."""
    out = []
    for path in _midi_files(root):
        rel = path.relative_to(root).as_posix()
        parts = rel.split("/")
        artist = parts[-2] if len(parts) >= 2 else "Unknown Artist"
        title, version = _stem(parts[-1]), 0
        m = _LAKH_VERSION.match(title)
        if m:
            title, version = m["title"], int(m["version"])
        out.append(Candidate(rel, "lakh", artist, title, f"{artist}/{title}".lower(), version, str(path)))
    return out


def discover_dir(root: Path) -> list[Candidate]:
    """Any folder of MIDI files: the parent folder names the artist, the file the title."""
    out = []
    for path in _midi_files(root):
        rel = path.relative_to(root).as_posix()
        parts = rel.split("/")
        artist = parts[-2] if len(parts) >= 2 else "Unknown Artist"
        title = _stem(parts[-1]).replace("_", " ").strip() or "Untitled"
        out.append(Candidate(rel, "dir", artist, title, rel.lower(), 0, str(path)))
    return out


def discover_music21(composer: str, works: list[str], limit: int | None) -> list[Candidate]:
    """Scores from music21's bundled public-domain corpus (e.g. the Bach chorales)."""
    from music21 import corpus

    corpus_root = Path(corpus.getComposer(composer)[0]).parents[1] if corpus.getComposer(composer) else None
    if works:
        paths = []
        for work in works:
            found = corpus.getWork(work)
            if not found:
                raise ConfigError(f"music21 corpus has no work {work!r} (param ingest.music21.works)")
            paths.append(Path(found if isinstance(found, (str, Path)) else found[0]))
    else:
        paths = sorted(Path(p) for p in corpus.getComposer(composer))
        if not paths:
            raise ConfigError(f"music21 corpus has no works by {composer!r} (param ingest.music21.composer)")
    if limit:
        paths = paths[:limit]
    out = []
    for p in paths:
        origin = p.relative_to(corpus_root).with_suffix("").as_posix() if corpus_root else p.stem
        artist = COMPOSER_NAMES.get(composer.lower(), composer.title())
        out.append(
            Candidate(origin, "music21", artist, _work_title(p.stem), origin.lower(), 0, str(p), None, score_truth(p))
        )
    return out


def score_truth(path: Path) -> dict | None:
    """What the score itself says: its key (signature and mode, as the editor encoded them) and meters.

    The labels of the clips cut from it are scored against this (a chorale's key is known, not estimated).
    """
    from music21 import converter, key, meter

    score = converter.parse(str(path), forceSource=True, storePickle=False)
    keys = [k for k in score.recurse().getElementsByClass(key.Key) if k.mode in ("major", "minor")]
    if not keys:
        return None
    tonic = keys[0].tonic.pitchClass
    meters = list(dict.fromkeys(ts.ratioString for ts in score.recurse().getElementsByClass(meter.TimeSignature)))
    return {
        "truth_version": 1,
        "truth_source": "music21 score",
        "key": {"tonic": NOTE_NAMES[tonic], "tonic_pc": tonic, "scale": keys[0].mode,
                "label": key_label(tonic, keys[0].mode)},
        "key_changes_in_score": len({(k.tonic.pitchClass, k.mode) for k in keys}) > 1,
        "meters": meters,
    }  # fmt: skip


COMPOSER_NAMES = {
    "bach": "J.S. Bach",
    "beethoven": "Ludwig van Beethoven",
    "mozart": "W.A. Mozart",
    "haydn": "Joseph Haydn",
    "handel": "G.F. Handel",
    "schubert": "Franz Schubert",
}


def _work_title(stem: str) -> str:
    """`bwv66.6` -> `BWV 66.6`; other corpus names are kept as they are."""
    m = re.match(r"^(bwv|k|op|hwv)[_ ]?(\d.*)$", stem, re.IGNORECASE)
    return f"{m[1].upper()} {m[2]}" if m else stem


def music21_to_midi(path: str, programs: list[int]) -> bytes:
    """Convert a corpus score to MIDI with a GM program per part (no parse cache is written)."""
    from music21 import converter

    score = converter.parse(path, forceSource=True, storePickle=False)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "score.mid"
        score.write("midi", fp=str(out))
        pm = parse_midi(out.read_bytes()).pm
    parts = [inst for inst in pm.instruments if inst.notes]
    if not parts:
        raise ItemError(f"{path}: the score has no notes")
    names = [p.partName or f"Part {i + 1}" for i, p in enumerate(score.parts)]
    for i, inst in enumerate(parts):
        inst.program = programs[i % len(programs)]
        inst.is_drum = False
        inst.name = names[i] if i < len(names) else f"Part {i + 1}"
    return instruments_to_midi(pm, parts)


def candidate_bytes(c: Candidate, programs: list[int]) -> bytes:
    """The MIDI bytes of a candidate; music21 scores are converted on the way."""
    if c.data is not None:
        return c.data
    if c.source == "music21":
        return music21_to_midi(c.path or "", programs)
    return Path(c.path or "").read_bytes()


def sample_candidates(seed: int, n_songs: int, which: str = "clean") -> list[Candidate]:
    """The embedded sample's songs: the `clean` set (origins sample/NNN) or the `messy` one (sample-messy/NNN)."""
    if which == "messy":
        from pipeline.sample.messy_write import generate_messy

        songs, prefix = generate_messy(seed, n_songs), "sample-messy"
    else:
        from pipeline.sample.write import generate

        songs, prefix = generate(seed, n_songs), "sample"
    out = []
    for plan, data, truth in tqdm(songs, total=n_songs, desc=f"ingest: composing sample ({which})", unit="song"):
        origin = f"{prefix}/{plan.index:03d}"
        out.append(Candidate(origin, "sample", plan.artist, plan.title, origin, 0, None, data, truth))
    return out


def source_folder(p: IngestParams, root: Path) -> Path | None:
    """The input folder of a `lakh` or `dir` source (relative paths from the repository root)."""
    if p.source not in ("lakh", "dir"):
        return None
    return Path(p.path) if Path(p.path).is_absolute() else root / p.path


def check_source(p: IngestParams, root: Path) -> None:
    """What can be checked before any work: the input folder exists."""
    folder = source_folder(p, root)
    if folder is not None and not folder.is_dir():
        raise ConfigError(f"input folder {folder} does not exist (param ingest.path)")


def discover(p: IngestParams, seed: int, root: Path) -> list[Candidate]:
    """Candidates of the configured source, in a stable order, cut to `limit`."""
    if p.source == "sample":
        found = sample_candidates(seed, p.sample.songs, p.sample.set)
    elif p.source == "music21":
        found = discover_music21(p.music21.composer, p.music21.works, p.music21.limit)
    else:
        check_source(p, root)
        folder = source_folder(p, root)
        assert folder is not None
        found = discover_lakh(folder) if p.source == "lakh" else discover_dir(folder)
    return found[: p.limit] if p.limit else found
