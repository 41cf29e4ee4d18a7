"""Tests of the training code: they run in .venv-train (`make test` calls its pytest);
.venv's pytest, which has no stable-audio-tools, skips this folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HAVE_SAT = importlib.util.find_spec("stable_audio_tools") is not None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    return None if HAVE_SAT else True


@pytest.fixture(scope="session")
def compat_applied() -> list[str]:
    from pipeline.train import compat

    compat.apply()
    return compat.APPLIED


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory: pytest.TempPathFactory, compat_applied: list[str]) -> Path:
    from pipeline.train import tiny_t5

    return tiny_t5.build(tmp_path_factory.mktemp("t5") / "tiny_t5")
