"""Run a function over items, in local worker processes or as Ray tasks, with a progress bar.

Results come back in input order and every exception is caught per item, so
outputs never depend on the engine or the number of workers, and one bad item
never stops a run: not one that raises, not one that kills its worker process,
not one that runs past the item timeout (its worker is killed and replaced).

A stage may hand `map_items` a read-only `context` (a corpus-wide lookup table,
the run's settings): it reaches each worker once (locally as an argument of the
worker process, on Ray as one object in the object store), never once per item.

With PIPELINE_WORKER_RSS set to a file path, each map_items call appends a JSON line
with the largest peak RSS its worker processes reported (benchmarks read it: Ray's
workers are not children of the stage process, so its own rusage misses them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import json
import logging
import multiprocessing as mp
import os
import pickle
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from tqdm import tqdm

from pipeline.errors import ItemError

if TYPE_CHECKING:
    from pipeline.params import RunParams

T = TypeVar("T")
Job = tuple[Callable[..., Any], str, Any]


@dataclass(frozen=True)
class Outcome(Generic[T]):
    item_id: str
    value: T | None = None
    error: str | None = None
    worker_rss_mb: float | None = field(default=None, compare=False)  # the worker's peak RSS so far

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Engine:
    """Where and how `map_items` runs items (Engine.of(params.run) builds it from params `run`)."""

    kind: Literal["local", "ray"] = "local"
    workers: int | None = 1  # None: auto (this machine's cores; on a joined Ray cluster, its CPUs)
    ray_address: str = ""  # ray: "" starts a local instance; "auto" or "ray://host:port" joins a cluster
    item_timeout_s: float = 0  # 0: no limit

    @classmethod
    def of(cls, run: RunParams) -> Engine:
        """The engine params `run` describe (executor, workers, ray.address, item_timeout_s)."""
        workers = None if run.workers == "auto" else int(run.workers)
        return cls(run.executor, workers, run.ray.address, run.item_timeout_s)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ItemError):
        return str(exc)
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _call(job: Job, context: Any = None) -> Outcome[Any]:
    fn, item_id, arg = job
    try:
        return Outcome(item_id, value=fn(arg) if context is None else fn(arg, context))
    except Exception as exc:  # one item's failure must not stop the run
        return Outcome(item_id, error=_describe(exc))


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB. Linux: VmHWM, the high-water mark of this program's own
    memory. ru_maxrss is not used there: it survives exec, so a worker spawned (fork + exec) by a
    1 GB parent reports at least 1 GB whatever it holds itself."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measured(outcome: Outcome[Any]) -> Outcome[Any]:
    """The outcome with its worker's peak RSS (a peak never falls: a worker's last item carries it)."""
    return dataclasses.replace(outcome, worker_rss_mb=round(peak_rss_mb(), 1))


def _timed_out(seconds: float) -> str:
    return f"timed out after {seconds:g} s"


# --- local engine: spawned worker processes ---------------------------------------------


# Each worker is one item at a time on one core: native libraries' thread pools (OpenBLAS,
# OpenMP in torch) would otherwise start a thread per core in every worker. On 2 cores, tag and
# clip took 25-30 % less wall time with one thread per worker (same outputs byte for byte); a
# variable the user set is kept.
WORKER_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def worker_env() -> dict[str, str]:
    """The thread limits a worker process starts with (what the user set wins)."""
    return {k: os.environ.get(k, "1") for k in WORKER_THREAD_VARS}


@contextlib.contextmanager
def _environ(extra: dict[str, str]) -> Iterator[None]:
    """os.environ with `extra` while a child process starts (spawn copies it), then as it was."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _worker(conn: Connection, context_blob: bytes | None) -> None:
    """Worker process loop: the context once, then one job in, one Outcome out, until told to stop."""
    context = None if context_blob is None else pickle.loads(context_blob)
    while True:
        job = conn.recv()
        if job is None:
            return
        conn.send(_measured(_call(job, context)))


def _crash_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"worker process crashed ({name}) while processing this item"
    return f"worker process exited (code {exitcode}) while processing this item"


def _pool(jobs: list[Job], workers: int, bar: tqdm, context: Any, timeout_s: float) -> list[Outcome[Any]]:
    """Each worker holds one item at a time, so a worker that dies (a native plugin's
    segfault) or is killed for running past the timeout fails exactly that item, and
    a fresh worker takes over."""
    ctx = mp.get_context("spawn")
    blob = None if context is None else pickle.dumps(context, protocol=pickle.HIGHEST_PROTOCOL)
    results: list[Outcome[Any] | None] = [None] * len(jobs)
    pending = iter(range(len(jobs)))
    held: dict[Connection, tuple[Any, int | None, float]] = {}  # conn -> (process, job index, started)

    def feed(conn: Connection, proc: Any) -> None:
        i = next(pending, None)
        held[conn] = (proc, i, time.monotonic())
        conn.send(None if i is None else jobs[i])

    def spawn_worker() -> None:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, blob), daemon=True)
        with _environ(worker_env()):
            proc.start()
        child.close()
        feed(parent, proc)

    def retire(conn: Connection, proc: Any, i: int, error: str) -> None:
        del held[conn]
        conn.close()
        results[i] = Outcome(jobs[i][1], error=error)
        bar.update()
        spawn_worker()

    for _ in range(min(workers, len(jobs))):
        spawn_worker()
    try:
        while any(i is not None for _, i, _ in held.values()):
            wait_s = None
            if timeout_s:
                starts = [t for _, i, t in held.values() if i is not None]
                wait_s = max(0.0, min(starts) + timeout_s - time.monotonic())
            by_sentinel = {proc.sentinel: conn for conn, (proc, _, _) in held.items()}
            for ready in wait([*held, *by_sentinel], wait_s):
                conn = by_sentinel.get(ready, ready)
                if conn not in held:
                    continue
                proc, i, _ = held[conn]
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
                    if i is None:
                        del held[conn]
                        conn.close()
                    else:
                        retire(conn, proc, i, _crash_reason(proc.exitcode))
            if timeout_s:
                now = time.monotonic()
                for conn, (proc, i, started) in list(held.items()):
                    if i is not None and now - started >= timeout_s and not conn.poll():
                        proc.kill()
                        proc.join()
                        retire(conn, proc, i, _timed_out(timeout_s))
    finally:
        for conn, (proc, _, _) in held.items():
            with contextlib.suppress(OSError):
                conn.send(None)
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    return [r for r in results if r is not None]


# --- Ray engine: one task per item --------------------------------------------------------

_RAY_CONTEXTS: dict[str, Any] = {}  # in a Ray worker process: the context of the current run, by object id


def _ray_call(job: Job, context_ref: list[Any] | None, report: str | None = None) -> Outcome[Any]:
    """Ray task body. The context's ObjectRef comes wrapped in a list so that Ray does not
    resolve (and unpickle) it for every task: each worker process fetches it once. While the
    item runs, a fatal signal's report (faulthandler: "Fatal Python error: Segmentation fault")
    goes to the file `report`, so the driver can name the signal that killed the worker."""
    context = None
    if context_ref is not None:
        import ray

        key = context_ref[0].hex()
        if key not in _RAY_CONTEXTS:
            _RAY_CONTEXTS.clear()  # a worker outliving a run drops that run's context
            _RAY_CONTEXTS[key] = ray.get(context_ref[0])
        context = _RAY_CONTEXTS[key]
    if report is None:
        return _measured(_call(job, context))
    with open(report, "w") as fh:
        faulthandler.enable(file=fh, all_threads=False)
        try:
            outcome = _call(job, context)
        finally:
            faulthandler.enable(file=sys.stderr)  # Ray's own setting, before fh closes
    Path(report).unlink(missing_ok=True)
    return _measured(outcome)


# faulthandler's words for the fatal signals it reports, and the signals' names.
_FATAL = {
    "Segmentation fault": "SIGSEGV",
    "Aborted": "SIGABRT",
    "Bus error": "SIGBUS",
    "Floating point exception": "SIGFPE",
    "Illegal instruction": "SIGILL",
}


def _ray_crash_reason(report: Path | None) -> str:
    """What killed a Ray worker mid-item, from its fatal-error report. A worker that left none was
    ended by a signal no process can catch: SIGKILL (the kernel's OOM killer, or a kill from outside)."""
    if report is None:  # no place to report to (a cluster run outside a DVC checkout)
        return "Ray worker process crashed while processing this item"
    text = report.read_text(errors="replace") if report.is_file() else ""
    for words, name in _FATAL.items():
        if f"Fatal Python error: {words}" in text:
            return f"Ray worker process crashed ({name}) while processing this item"
    return "Ray worker process was killed (SIGKILL: no fatal-error report) while processing this item"


def _ray_reason(exc: BaseException, report: Path | None) -> str:
    import ray.exceptions as rex

    if isinstance(exc, rex.WorkerCrashedError):
        return _ray_crash_reason(report)
    if isinstance(exc, rex.OutOfMemoryError):
        return "Ray killed the worker process for lack of memory while processing this item"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@contextlib.contextmanager
def ray_session(engine: Engine) -> Iterator[int]:
    """Ray for one stage run: joins `engine.ray_address` or starts a local instance with
    `engine.workers` CPUs (shut down on exit; one that was already running is reused and
    left running). Yields how many items to keep in flight."""
    from pipeline.errors import ConfigError

    try:
        import ray
    except ImportError:
        raise ConfigError("run.executor is 'ray' but ray is not installed here (it is in the data extra)") from None
    started = False
    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # Workers import the per-item functions by module name: put this checkout first on their path
        # (on a cluster the project lives at the same path on every node).
        root = str(Path(__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        env = {"PYTHONPATH": path, **worker_env()}
        common: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
        try:
            if engine.ray_address:
                ray.init(address=engine.ray_address, runtime_env={"env_vars": env}, **common)
            else:
                # A local instance's workers inherit the environment its raylet starts with, so the
                # workers Ray starts with the instance serve the tasks (a runtime_env would make Ray
                # start fresh ones: about 1 s more per stage on 2 cores).
                with _environ(env):
                    ray.init(address="local", num_cpus=engine.workers or os.cpu_count() or 1, **common)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = f"join the Ray cluster at {engine.ray_address!r}" if engine.ray_address else "start Ray"
            raise ConfigError(f"run.ray.address: could not {where}: {exc}") from None
        started = True
    try:
        yield engine.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    finally:
        if started:
            ray.shutdown()


def _report_dir(engine: Engine) -> Path | None:
    """Where Ray workers write fatal-error reports: a temp folder for a local instance; on a cluster,
    one under the checkout's .dvc/tmp (a path every node shares), or none outside a DVC checkout."""
    if not engine.ray_address:
        return Path(tempfile.mkdtemp(prefix="pipeline-ray-"))
    shared = Path.cwd() / ".dvc" / "tmp"
    return Path(tempfile.mkdtemp(prefix="ray-reports-", dir=shared)) if shared.is_dir() else None


@contextlib.contextmanager
def _removed(folder: Path | None) -> Iterator[None]:
    try:
        yield
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _ray_map(jobs: list[Job], engine: Engine, bar: tqdm, context: Any) -> list[Outcome[Any]]:
    """At most as many tasks in flight as there are workers, so a task starts about when it is
    submitted and the timeout counts its run, not its wait in Ray's queue."""
    import ray

    timeout_s = engine.item_timeout_s
    results: list[Outcome[Any] | None] = [None] * len(jobs)
    reports = _report_dir(engine)

    def report(i: int) -> Path | None:
        return None if reports is None else reports / f"{i}.txt"

    with ray_session(engine) as slots, _removed(reports):
        task = ray.remote(_ray_call).options(num_cpus=1, max_retries=0)
        context_ref = None if context is None else [ray.put(context)]
        pending = iter(range(len(jobs)))
        inflight: dict[Any, tuple[int, float]] = {}  # ObjectRef -> (job index, submitted)

        def submit() -> None:
            i = next(pending, None)
            if i is not None:
                where = report(i)
                inflight[task.remote(jobs[i], context_ref, where and str(where))] = (i, time.monotonic())

        def settle(i: int, outcome: Outcome[Any]) -> None:
            results[i] = outcome
            bar.update()
            submit()

        for _ in range(min(slots, len(jobs))):
            submit()
        while inflight:
            wait_s = None
            if timeout_s:
                wait_s = max(0.0, min(t for _, t in inflight.values()) + timeout_s - time.monotonic())
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=wait_s)
            if ready:
                ready, _ = ray.wait(list(inflight), num_returns=len(inflight), timeout=0)
            for ref in ready:
                i, _ = inflight.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    outcome = Outcome(jobs[i][1], error=_ray_reason(exc, report(i)))
                settle(i, outcome)
            if timeout_s:
                now = time.monotonic()
                for ref, (i, started) in list(inflight.items()):
                    if now - started >= timeout_s:
                        del inflight[ref]
                        ray.cancel(ref, force=True)  # kills the worker process running it
                        settle(i, Outcome(jobs[i][1], error=_timed_out(timeout_s)))
    return [r for r in results if r is not None]


def _report_rss(desc: str, engine: Engine, results: list[Outcome[Any]]) -> None:
    """Append the largest worker peak RSS to the file PIPELINE_WORKER_RSS names, if it is set."""
    path = os.environ.get("PIPELINE_WORKER_RSS")
    if not path:
        return
    rss = [r.worker_rss_mb for r in results if r.worker_rss_mb is not None]
    line = {"desc": desc, "executor": engine.kind, "items": len(results), "max_worker_rss_mb": max(rss, default=None)}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")


def map_items(
    fn: Callable[..., T],
    items: Sequence[tuple[str, Any]],
    engine: int | Engine | RunParams,
    desc: str,
    unit: str = "item",
    isolate: bool = False,
    context: Any = None,
) -> list[Outcome[T]]:
    """Apply `fn` to each `(item_id, arg)`: `fn(arg)`, or `fn(arg, context)` when a context
    is given; `fn` must be a module-level function. `engine` is a stage's params `run`, an
    Engine, or a bare worker count (local engine, no timeout).

    Locally, with one worker the items run in this process, unless `isolate` asks for a
    worker process anyway (for native code that may crash the process) or an item
    timeout is set (only a worker process can be stopped). On Ray every item is a task.
    """
    if isinstance(engine, int):
        engine = Engine(workers=engine)
    elif not isinstance(engine, Engine):
        engine = Engine.of(engine)
    n_workers = engine.workers or os.cpu_count() or 1
    jobs: list[Job] = [(fn, item_id, arg) for item_id, arg in items]
    bar = tqdm(total=len(jobs), desc=desc, unit=unit, dynamic_ncols=True)
    try:
        if not jobs:
            return []
        if engine.kind == "ray":
            results = _ray_map(jobs, engine, bar, context)
        elif n_workers <= 1 and not isolate and not engine.item_timeout_s:
            results = []
            for job in jobs:
                results.append(_call(job, context))
                bar.update()
        else:
            results = _pool(jobs, max(1, n_workers), bar, context, engine.item_timeout_s)
        if len(results) != len(jobs):
            raise RuntimeError(f"{desc}: lost {len(jobs) - len(results)} results")
        _report_rss(desc, engine, results)
        return results
    finally:
        bar.close()
