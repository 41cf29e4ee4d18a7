"""MIDI-to-fine-tune dataset pipeline: the library behind the DVC stages.

Everything here is importable without DVC; `stages/` holds the thin entry points.
"""

__version__ = "0.1.0"
