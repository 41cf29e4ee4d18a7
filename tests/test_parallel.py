"""The worker pool: results in input order, errors and even crashed workers fail one item each."""

from __future__ import annotations

import os
import signal

from pipeline.parallel import ItemError, map_items


def square_or_fail(x: int) -> int:
    if x == 3:
        raise ItemError("three is not allowed")
    if x == 5:
        raise ZeroDivisionError("boom")
    if x == 7:
        os.kill(os.getpid(), signal.SIGSEGV)  # a native plugin crashing its process
    return x * x


def test_one_bad_or_crashing_item_fails_alone():
    items = [(f"item{i}", i) for i in range(10)]
    for workers, isolate in ((1, True), (2, False), (3, False)):
        out = map_items(square_or_fail, items, workers, desc="test", isolate=isolate)
        assert [o.item_id for o in out] == [f"item{i}" for i in range(10)]
        assert [o.value for o in out if o.ok] == [i * i for i in range(10) if i not in (3, 5, 7)]
        errors = {o.item_id: o.error for o in out if not o.ok}
        assert errors["item3"] == "three is not allowed"
        assert errors["item5"].startswith("ZeroDivisionError: boom (at test_parallel.py:")
        assert errors["item7"] == "worker process crashed (SIGSEGV) while processing this item"


def test_in_process_with_one_worker():
    out = map_items(square_or_fail, [("a", 2), ("b", 3)], 1, desc="test")
    assert [(o.value, o.error) for o in out] == [(4, None), (None, "three is not allowed")]
