"""Import torchaudio where its native library cannot load (PyPI ships a CUDA build).

deeprhythm (tag stage) and stable-audio-tools (training) need only torchaudio's
pure-Python parts; its native extension is marked unavailable and the import retried.
Standard library only: both the data and the training environments import it.
"""

from __future__ import annotations

import sys
import types
from typing import Any


def import_torchaudio() -> tuple[Any, bool]:
    """(torchaudio, whether its native extension had to be stubbed out)."""
    try:
        import torchaudio

        return torchaudio, False
    except (OSError, ImportError, RuntimeError):
        for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
            del sys.modules[name]
    stub = types.ModuleType("torchaudio._extension")
    stub._IS_TORCHAUDIO_EXT_AVAILABLE = False  # type: ignore[attr-defined]
    stub._IS_ALIGN_AVAILABLE = False  # type: ignore[attr-defined]

    def fail_if_no_align(fn: Any) -> Any:
        def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("torchaudio's alignment needs its native extension")

        return unavailable

    stub.fail_if_no_align = fail_if_no_align  # type: ignore[attr-defined]
    sys.modules["torchaudio._extension"] = stub
    import torchaudio

    return torchaudio, True
