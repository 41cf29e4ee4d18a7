"""Probe candidates and drop duplicates: Lakh `.N` versions and files with the same notes.

Among duplicates the file kept is the one that loads and has the most
instruments (ties: the lowest version number, then the first path).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pretty_midi

from pipeline.errors import ItemError
from pipeline.ids import sha256_bytes, song_id
from pipeline.ingest.sources import Candidate, candidate_bytes
from pipeline.midi.load import parse_midi
from pipeline.records import Duplicate


@dataclass(frozen=True)
class Probe:
    candidate: Candidate
    data: bytes | None  # kept only for generated songs; files are re-read when copied
    sha256: str
    fingerprint: str | None  # None when the file has no notes
    n_instruments: int
    n_notes: int
    duration_s: float

    @property
    def id(self) -> str:
        return song_id(self.candidate.artist, self.candidate.title, self.sha256)

    def read_bytes(self) -> bytes:
        """The probed bytes; a file that changed since it was probed is an error."""
        if self.data is not None:
            return self.data
        data = Path(self.candidate.path or "").read_bytes()
        if sha256_bytes(data) != self.sha256:
            raise ItemError(f"{self.candidate.origin}: file changed while ingesting; run again")
        return data


def notes_fingerprint(pm: pretty_midi.PrettyMIDI) -> str | None:
    """Hash of the notes normalised to (drum?, pitch, onset ms, offset ms), order-free.

    Ignores tick resolution, track order and names, channels, programs and
    velocities: two files that play the same notes at the same times match.
    """
    notes = sorted(
        (int(inst.is_drum), int(n.pitch), round(n.start * 1000), round(n.end * 1000))
        for inst in pm.instruments
        for n in inst.notes
    )
    if not notes:
        return None
    return hashlib.sha256(repr(notes).encode()).hexdigest()


def probe(job: tuple[Candidate, list[int]]) -> Probe:
    """Read (or convert) a candidate and measure what dedupe needs. Runs in a worker."""
    candidate, programs = job
    data = candidate_bytes(candidate, programs)
    parsed = parse_midi(data)
    generated = candidate.path is None or candidate.source == "music21"
    return Probe(
        candidate=candidate,
        data=data if generated else None,
        sha256=sha256_bytes(data),
        fingerprint=notes_fingerprint(parsed.pm),
        n_instruments=parsed.n_instruments,
        n_notes=parsed.n_notes,
        duration_s=round(float(parsed.pm.get_end_time()), 6),
    )


def _rank(p: Probe) -> tuple[int, int, str]:
    return (-p.n_instruments, p.candidate.version, p.candidate.origin)


def _drop_groups(probes: list[Probe], key: str, reason: str) -> tuple[list[Probe], list[Duplicate]]:
    groups: dict[str, list[Probe]] = {}
    for p in probes:
        k = p.candidate.group if key == "group" else (p.sha256 if key == "sha256" else p.fingerprint)
        groups.setdefault(k or f"unique:{p.candidate.origin}", []).append(p)
    kept, dropped = [], []
    for members in groups.values():
        members.sort(key=_rank)
        best = members[0]
        kept.append(best)
        for other in members[1:]:
            if reason == "lakh-version":
                detail = (
                    f"version {other.candidate.version} of '{best.candidate.artist}/{best.candidate.title}'; kept "
                    f"version {best.candidate.version} ({best.n_instruments} instruments vs {other.n_instruments})"
                )
            elif key == "sha256":
                detail = f"byte-identical to {best.candidate.origin}"
            else:
                detail = f"same {other.n_notes} notes as {best.candidate.origin}"
            dropped.append(
                Duplicate(
                    id=other.candidate.origin,
                    kept=best.id,
                    kept_origin=best.candidate.origin,
                    reason=reason,
                    detail=detail,
                )  # type: ignore[arg-type]
            )
    kept.sort(key=lambda p: p.candidate.origin)
    return kept, dropped


def dedupe(probes: list[Probe], lakh_versions: bool, same_notes: bool) -> tuple[list[Probe], list[Duplicate]]:
    """Returns the probes kept and one Duplicate record per file dropped."""
    dropped: list[Duplicate] = []
    kept = probes
    if lakh_versions:
        kept, d = _drop_groups(kept, "group", "lakh-version")
        dropped += d
    # Byte-identical files would get the same id: always keep just one.
    kept, d = _drop_groups(kept, "sha256", "same-notes")
    dropped += d
    if same_notes:
        kept, d = _drop_groups(kept, "fingerprint", "same-notes")
        dropped += d
    return kept, sorted(dropped, key=lambda r: r.id)
