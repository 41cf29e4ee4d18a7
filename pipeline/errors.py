"""The pipeline's two kinds of expected failure, at the ground floor so that any module
can raise them without importing params (and pretty_midi) or the executor."""

from __future__ import annotations


class ConfigError(ValueError):
    """The run is configured wrongly (a missing input folder, an unknown work, ...): the stage stops
    before any work, with exit 2 and one line."""


class ItemError(Exception):
    """An expected, explained failure of one item: its message is the reason recorded in the
    stage's failures file; the run goes on."""
