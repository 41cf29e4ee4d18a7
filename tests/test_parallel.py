"""The executor: results in input order; errors, crashed workers and timeouts fail one item each,
locally and on Ray; a stage's context reaches each worker once, not once per item."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter

import pytest

from pipeline.errors import ItemError
from pipeline.parallel import Engine, map_items, ray_session


def square_or_fail(x: int) -> int:
    if x == 3:
        raise ItemError("three is not allowed")
    if x == 5:
        raise ZeroDivisionError("boom")
    if x == 7:
        os.kill(os.getpid(), signal.SIGSEGV)  # a native plugin crashing its process
    return x * x


def hang_or_die(x: int) -> int:
    if x == 2:
        time.sleep(600)  # a hung item: only the timeout ends it
    if x == 4:
        os.kill(os.getpid(), signal.SIGKILL)  # killed from outside (the OOM killer, say)
    return x * x


UNPICKLED: Counter[str] = Counter()  # per process: how often each context was unpickled here


class Context:
    """A read-only table that counts its unpicklings (by token, so tests do not mix)."""

    def __init__(self, token: str, table: dict[int, str]):
        self.token, self.table = token, table

    def __reduce__(self):
        return (_rebuild, (self.token, self.table))


def _rebuild(token: str, table: dict[int, str]) -> Context:
    UNPICKLED[token] += 1
    return Context(token, table)


def look_up(x: int, ctx: Context) -> tuple[int, int, str]:
    return os.getpid(), UNPICKLED[ctx.token], ctx.table[x]


ITEMS = [(f"item{i}", i) for i in range(10)]


def hold_memory(mb: int) -> int:
    """Touch `mb` MiB (every page written), so the worker's peak RSS holds at least that."""
    block = bytearray(mb << 20)
    block[::4096] = b"x" * len(block[::4096])
    return len(block) >> 20


def _rss_report(tmp_path, monkeypatch, engine, large: int = 300) -> list[dict]:
    import json

    report = tmp_path / f"rss-{uuid.uuid4().hex}.jsonl"
    monkeypatch.setenv("PIPELINE_WORKER_RSS", str(report))
    out = map_items(hold_memory, [("small", 8), ("large", large), ("small2", 8)], engine, desc="rss")
    assert [o.value for o in out] == [8, large, 8]
    return [json.loads(line) for line in report.read_text().splitlines()]


def test_one_bad_or_crashing_item_fails_alone():
    for workers, isolate in ((1, True), (2, False), (3, False)):
        out = map_items(square_or_fail, ITEMS, workers, desc="test", isolate=isolate)
        assert [o.item_id for o in out] == [f"item{i}" for i in range(10)]
        assert [o.value for o in out if o.ok] == [i * i for i in range(10) if i not in (3, 5, 7)]
        errors = {o.item_id: o.error for o in out if not o.ok}
        assert errors["item3"] == "three is not allowed"
        assert errors["item5"].startswith("ZeroDivisionError: boom (at test_parallel.py:")
        assert errors["item7"] == "worker process crashed (SIGSEGV) while processing this item"


def test_local_workers_report_their_peak_rss(tmp_path, monkeypatch):
    """Benchmarks read worker memory from this report: the 300 MiB item must show in it, over what a
    worker holds anyway (its imports), and a big parent must not (ru_maxrss survives the spawn's exec:
    in CI, after 500 tests, every worker read over 1 GB)."""
    parent = bytearray(700 << 20)  # held by this process while the workers start
    parent[::4096] = b"x" * len(parent[::4096])
    (line,) = _rss_report(tmp_path, monkeypatch, Engine("local", 2))
    (baseline,) = _rss_report(tmp_path, monkeypatch, Engine("local", 2), large=8)
    assert line["executor"] == "local" and line["items"] == 3
    assert 250 <= line["max_worker_rss_mb"] - baseline["max_worker_rss_mb"] <= 400
    assert baseline["max_worker_rss_mb"] < 600  # the worker's own memory, not the parent's


def test_in_process_with_one_worker():
    out = map_items(square_or_fail, [("a", 2), ("b", 3)], 1, desc="test")
    assert [(o.value, o.error) for o in out] == [(4, None), (None, "three is not allowed")]


@pytest.mark.parametrize("workers", [1, 2])
def test_local_timeout_and_kill_fail_their_items_only(workers):
    """With a timeout even one worker is a process: the hung item's worker is killed and replaced."""
    out = map_items(hang_or_die, ITEMS[:6], Engine("local", workers, item_timeout_s=5), desc="test")
    assert [o.item_id for o in out] == [f"item{i}" for i in range(6)]
    assert {o.item_id: o.value for o in out if o.ok} == {f"item{i}": i * i for i in (0, 1, 3, 5)}
    assert {o.item_id: o.error for o in out if not o.ok} == {
        "item2": "timed out after 5 s",
        "item4": "worker process crashed (SIGKILL) while processing this item",
    }


@pytest.mark.parametrize("workers", [1, 2])
def test_local_context_is_unpickled_once_per_worker(workers):
    token = uuid.uuid4().hex
    ctx = Context(token, {i: f"v{i}" for i in range(10)})
    out = map_items(look_up, ITEMS, workers, desc="test", isolate=True, context=ctx)
    assert [o.value[2] for o in out] == [f"v{i}" for i in range(10)]
    per_worker = {pid: count for pid, count, _ in (o.value for o in out)}
    assert len(per_worker) <= workers and set(per_worker.values()) == {1}
    in_process = map_items(look_up, ITEMS[:3], 1, desc="test", context=ctx)
    assert [o.value[1:] for o in in_process] == [(0, "v0"), (0, "v1"), (0, "v2")]  # never pickled


def thread_limits(_: int) -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def test_local_workers_run_one_thread_each_unless_the_user_says(monkeypatch):
    """Two workers on two cores must not each start a BLAS/OpenMP thread per core; a limit the user
    set reaches the workers as it is, and the stage process's own environment is left alone."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    out = map_items(thread_limits, ITEMS[:2], 2, desc="test")
    assert [o.value for o in out] == [{"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "3"}] * 2
    assert "OMP_NUM_THREADS" not in os.environ and "OPENBLAS_NUM_THREADS" not in os.environ


@pytest.mark.slow
def test_ray_workers_of_a_local_instance_run_one_thread_each_and_import_this_checkout(monkeypatch):
    """A local instance's workers inherit the limits from the raylet's start (no runtime_env, so the
    workers Ray starts with the instance serve the tasks); the stage's own environment is left alone. Runs before
    the module's shared instance starts (it would be reused)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    with ray_session(Engine("ray", 2)):
        out = map_items(thread_limits, ITEMS[:2], Engine("ray", 2), desc="test")
    assert [o.value for o in out] == [{"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "3"}] * 2
    assert "OMP_NUM_THREADS" not in os.environ


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance (2 CPUs) for this module's Ray tests; map_items reuses it."""
    with ray_session(Engine("ray", 2)) as slots:
        yield slots


@pytest.mark.slow
def test_ray_errors_crashes_and_timeout_fail_their_items_only(ray_instance):
    engine = Engine("ray", 2, item_timeout_s=10)
    out = map_items(square_or_fail, ITEMS, engine, desc="test")
    assert [o.item_id for o in out] == [f"item{i}" for i in range(10)]
    assert [o.value for o in out if o.ok] == [i * i for i in range(10) if i not in (3, 5, 7)]
    errors = {o.item_id: o.error for o in out if not o.ok}
    assert errors["item3"] == "three is not allowed"
    assert errors["item5"].startswith("ZeroDivisionError: boom (at test_parallel.py:")
    assert errors["item7"] == "Ray worker process crashed (SIGSEGV) while processing this item"

    out = map_items(hang_or_die, ITEMS[:6], engine, desc="test")
    assert [o.item_id for o in out] == [f"item{i}" for i in range(6)]
    assert {o.item_id: o.value for o in out if o.ok} == {f"item{i}": i * i for i in (0, 1, 3, 5)}
    assert {o.item_id: o.error for o in out if not o.ok} == {
        "item2": "timed out after 10 s",
        "item4": "Ray worker process was killed (SIGKILL: no fatal-error report) while processing this item",
    }


@pytest.mark.slow
def test_ray_workers_report_their_peak_rss(ray_instance, tmp_path, monkeypatch):
    """Ray's workers are not children of the stage process: their peak RSS comes from the report."""
    (baseline,) = _rss_report(tmp_path, monkeypatch, Engine("ray", 2), large=8)  # first: peaks never fall
    (line,) = _rss_report(tmp_path, monkeypatch, Engine("ray", 2))
    assert line["executor"] == "ray" and line["items"] == 3
    assert 250 <= line["max_worker_rss_mb"] - baseline["max_worker_rss_mb"] <= 400


@pytest.mark.slow
def test_ray_context_is_fetched_once_per_worker(ray_instance):
    token = uuid.uuid4().hex
    ctx = Context(token, {i: f"v{i}" for i in range(10)})
    out = map_items(look_up, ITEMS, Engine("ray", 2), desc="test", context=ctx)
    assert [o.value[2] for o in out] == [f"v{i}" for i in range(10)]
    assert {count for _, count, _ in (o.value for o in out)} == {1}  # each worker process unpickled it once
