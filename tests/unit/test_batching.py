"""Coalescer: concurrent callers share batch calls and each gets its own results."""

from __future__ import annotations

import threading
import time

import pytest

from ragship.serving.batching import Coalescer


class _GatedDouble:
    """Doubles numbers; the first call blocks until released, so others queue up behind it."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.release = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            assert self.release.wait(60)
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return [2 * i for i in items]


def _wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)


def _start(coalescer: Coalescer[int, int], calls: list[list[int]]) -> tuple[list[threading.Thread], dict]:
    results: dict[int, object] = {}

    def call(n: int, items: list[int]) -> None:
        try:
            results[n] = coalescer(items)
        except Exception as e:
            results[n] = e

    threads = [threading.Thread(target=call, args=(n, items)) for n, items in enumerate(calls)]
    return threads, results


def test_callers_arriving_during_a_batch_share_the_next_one_and_get_their_own_results() -> None:
    fn = _GatedDouble()
    coalescer = Coalescer(fn, max_batch=64)
    threads, results = _start(coalescer, [[1], [2, 3], [4], [5], [6, 7, 8]])
    threads[0].start()
    _wait_for(lambda: len(fn.calls) == 1, "the first batch")
    for t in threads[1:]:
        t.start()
    _wait_for(lambda: coalescer.waiting == 4, "four callers to queue")
    fn.release.set()
    for t in threads:
        t.join(60)
    assert results == {0: [2], 1: [4, 6], 2: [8], 3: [10], 4: [12, 14, 16]}
    assert fn.calls[0] == [1]
    assert len(fn.calls) == 2 and sorted(fn.calls[1]) == [2, 3, 4, 5, 6, 7, 8]  # one call for all four


def test_batches_stop_at_max_batch_and_a_large_call_runs_alone() -> None:
    fn = _GatedDouble()
    coalescer = Coalescer(fn, max_batch=3)
    threads, results = _start(coalescer, [[0], [1, 2], [3, 4], [5, 6, 7, 8], [9]])
    threads[0].start()
    _wait_for(lambda: len(fn.calls) == 1, "the first batch")
    for n, t in enumerate(threads[1:], 1):
        t.start()
        _wait_for(lambda n=n: coalescer.waiting == n, "the caller to queue")  # one at a time: a known order
    fn.release.set()
    for t in threads:
        t.join(60)
    assert [results[n] for n in range(5)] == [[0], [2, 4], [6, 8], [10, 12, 14, 16], [18]]
    assert fn.calls == [[0], [1, 2], [3, 4], [5, 6, 7, 8], [9]]  # first come, first served, none over 3 merged


def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_still_runs() -> None:
    fn = _GatedDouble()
    coalescer = Coalescer(fn, max_batch=2)
    threads, results = _start(coalescer, [[1], [-1], [2], [3]])
    threads[0].start()
    _wait_for(lambda: len(fn.calls) == 1, "the first batch")
    for n, t in enumerate(threads[1:], 1):
        t.start()
        _wait_for(lambda n=n: coalescer.waiting == n, "the caller to queue")
    fn.release.set()
    for t in threads:
        t.join(60)
    assert results[0] == [2]
    assert isinstance(results[1], ValueError) and isinstance(results[2], ValueError)  # batch [-1, 2]
    assert results[3] == [6]
    assert coalescer([]) == []


def test_a_wrong_number_of_results_is_an_error_and_max_batch_is_checked() -> None:
    with pytest.raises(ValueError, match="2 results for 1 items"):
        Coalescer(lambda items: [1, 2])([0])
    with pytest.raises(ValueError, match="max_batch"):
        Coalescer(lambda items: items, max_batch=0)
