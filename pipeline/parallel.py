"""Run a function over items in worker processes with a progress bar.

Results come back in input order and every exception is caught per item, so
outputs never depend on the number of workers and one bad item never stops a run,
not even one that kills its worker process.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
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


def _worker(conn: Connection) -> None:
    """Worker process loop: one job in, one Outcome out, until told to stop."""
    while True:
        job = conn.recv()
        if job is None:
            return
        conn.send(_call(job))


def _crash_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"worker process crashed ({name}) while processing this item"
    return f"worker process exited (code {exitcode}) while processing this item"


def _pool(jobs: list[tuple[Callable[[Any], T], str, Any]], workers: int, bar: tqdm) -> list[Outcome[T]]:
    """Each worker holds one item at a time, so a worker that dies (a native plugin's
    segfault) fails exactly that item, and a fresh worker takes over."""
    ctx = mp.get_context("spawn")
    results: list[Outcome[T] | None] = [None] * len(jobs)
    pending = iter(range(len(jobs)))
    held: dict[Connection, tuple[Any, int | None]] = {}

    def feed(conn: Connection, proc: Any) -> None:
        i = next(pending, None)
        held[conn] = (proc, i)
        conn.send(None if i is None else jobs[i])

    def spawn_worker() -> None:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child,), daemon=True)
        proc.start()
        child.close()
        feed(parent, proc)

    for _ in range(min(workers, len(jobs))):
        spawn_worker()
    try:
        while any(i is not None for _, i in held.values()):
            by_sentinel = {proc.sentinel: conn for conn, (proc, _) in held.items()}
            for ready in wait([*held, *by_sentinel]):
                conn = by_sentinel.get(ready, ready)
                if conn not in held:
                    continue
                proc, i = held[conn]
                try:
                    outcome = conn.recv() if conn.poll() else None
                except (EOFError, OSError):
                    outcome = None
                if outcome is not None and i is not None:
                    results[i] = outcome
                    bar.update()
                    feed(conn, proc)
                elif not proc.is_alive():
                    proc.join()
                    del held[conn]
                    conn.close()
                    if i is not None:
                        results[i] = Outcome(jobs[i][1], error=_crash_reason(proc.exitcode))
                        bar.update()
                        spawn_worker()
    finally:
        for conn, (proc, _) in held.items():
            with contextlib.suppress(OSError):
                conn.send(None)
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    return [r for r in results if r is not None]


def map_items(
    fn: Callable[[Any], T],
    items: Sequence[tuple[str, Any]],
    workers: int,
    desc: str,
    unit: str = "item",
    isolate: bool = False,
) -> list[Outcome[T]]:
    """Apply `fn` to each `(item_id, arg)`; `fn` must be a module-level function.

    With one worker the items run in this process, unless `isolate` asks for a
    worker process anyway (for native code that may crash the process).
    """
    jobs = [(fn, item_id, arg) for item_id, arg in items]
    bar = tqdm(total=len(jobs), desc=desc, unit=unit, dynamic_ncols=True)
    try:
        if (workers <= 1 and not isolate) or not jobs:
            results = []
            for job in jobs:
                results.append(_call(job))
                bar.update()
            return results
        results = _pool(jobs, max(1, workers), bar)
        if len(results) != len(jobs):
            raise RuntimeError(f"{desc}: lost {len(jobs) - len(results)} results")
        return results
    finally:
        bar.close()
