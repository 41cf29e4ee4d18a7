"""Run a function over items in worker processes with a progress bar.

Results come back in input order and every exception is caught per item, so
outputs never depend on the number of workers and one bad item never stops a run.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tqdm import tqdm

T = TypeVar("T")


class ItemError(Exception):
    """An expected, explained failure of one item: its message is the reason."""


@dataclass(frozen=True)
class Outcome(Generic[T]):
    item_id: str
    value: T | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ItemError):
        return str(exc)
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _call(job: tuple[Callable[[Any], T], str, Any]) -> Outcome[T]:
    fn, item_id, arg = job
    try:
        return Outcome(item_id, value=fn(arg))
    except Exception as exc:  # one item's failure must not stop the run
        return Outcome(item_id, error=_describe(exc))


def map_items(
    fn: Callable[[Any], T],
    items: Sequence[tuple[str, Any]],
    workers: int,
    desc: str,
    unit: str = "item",
) -> list[Outcome[T]]:
    """Apply `fn` to each `(item_id, arg)`; `fn` must be a module-level function."""
    jobs = [(fn, item_id, arg) for item_id, arg in items]
    bar = tqdm(total=len(jobs), desc=desc, unit=unit, dynamic_ncols=True)
    results: list[Outcome[T]] = []
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                results.append(_call(job))
                bar.update()
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(min(workers, len(jobs))) as pool:
                for outcome in pool.imap(_call, jobs, chunksize=1):
                    results.append(outcome)
                    bar.update()
    finally:
        bar.close()
    return results
