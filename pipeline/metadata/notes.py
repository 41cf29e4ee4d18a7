"""One-time status notes: a run over thousands of songs should say "audio-features
answered 403" once, not once per song."""

from __future__ import annotations


class Notes:
    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lines: list[str] = []

    def add(self, key: str, line: str) -> None:
        """Record `line` unless a note with the same `key` was recorded already."""
        if key not in self._seen:
            self._seen.add(key)
            self._lines.append(line)

    def __contains__(self, key: str) -> bool:
        return key in self._seen

    @property
    def lines(self) -> list[str]:
        return list(self._lines)
