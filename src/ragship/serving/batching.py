"""Merge concurrent calls of a batch function into one call: adaptive batching inside a process.

The query API encodes questions in its own process on a CPU host (``serving.query_models``), with the query
pipeline's own embedder (:func:`coalesce_query_embedders` puts its backend behind a coalescer). Under load,
many request threads each encode one short text; one model call on all of them costs little more than a
call on one (benchmarks/README.md: 2.4x the throughput for short queries). BentoML batches this way
between services; :class:`Coalescer` does it between threads, with no wait added: an idle coalescer runs
a call at once in the caller's thread, and callers arriving while a batch runs form the next batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from haystack import Pipeline

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Call(Generic[Item, Result]):
    items: list[Item]
    wake: threading.Condition  # on the coalescer's lock: only this caller waits on it
    results: list[Result] | None = None
    error: BaseException | None = None
    done: bool = False


class Coalescer(Generic[Item, Result]):
    """Calls ``batch_fn`` on the items of every caller waiting, up to ``max_batch`` items at a time.

    ``batch_fn`` takes a list and returns one result per item, in order. A caller gets the results of its
    own items; when a batch fails, every caller in it gets the error. Callers are served first come, first
    served; a single call of more than ``max_batch`` items runs alone.
    """

    def __init__(self, batch_fn: Callable[[list[Item]], list[Result]], max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self._batch_fn = batch_fn
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Call[Item, Result]] = []
        self._running = False

    @property
    def waiting(self) -> int:
        """Calls queued behind the batch that runs now."""
        with self._lock:
            return len(self._queue)

    def __call__(self, items: list[Item]) -> list[Result]:
        """The results of ``items``, computed in a batch with whatever other calls are waiting."""
        if not items:
            return []
        call: _Call[Item, Result] = _Call(list(items), threading.Condition(self._lock))
        with self._lock:
            self._queue.append(call)
            # Whoever finds no batch running runs the queue's head; the others wait for their results
            # or for their turn to lead, so no thread sits idle while work is queued. A finished batch wakes
            # its own callers and the next head only: waking every waiter (notify_all) cost each batch one
            # wake-up per queued thread, GIL hand-offs that grew with the clients (py-spy, benchmarks/README.md).
            while not call.done:
                if self._running:
                    call.wake.wait()
                    continue
                self._running = True
                batch = self._take()
                self._lock.release()
                try:
                    self._run(batch)
                finally:
                    self._lock.acquire()
                    self._running = False
                    for done in batch:
                        done.wake.notify()
                    if self._queue:
                        self._queue[0].wake.notify()
        if call.error is not None:
            raise call.error
        assert call.results is not None
        return call.results

    def _take(self) -> list[_Call[Item, Result]]:
        batch = [self._queue.pop(0)]
        size = len(batch[0].items)
        while self._queue and size + len(self._queue[0].items) <= self.max_batch:
            size += len(self._queue[0].items)
            batch.append(self._queue.pop(0))
        return batch

    def _run(self, batch: list[_Call[Item, Result]]) -> None:
        items = [item for call in batch for item in call.items]
        try:
            results = self._batch_fn(items)
            if len(results) != len(items):
                raise ValueError(f"the batch function returned {len(results)} results for {len(items)} items")
        except BaseException as e:  # every caller of the batch sees it, in its own thread
            for call in batch:
                call.error, call.done = e, True
            return
        start = 0
        for call in batch:
            call.results = list(results[start : start + len(call.items)])
            call.done = True
            start += len(call.items)


class CoalescedBackend:
    """An embedder's embedding backend whose concurrent calls run as one batch (one :class:`Coalescer` per
    set of encode options, so only calls that would encode alike are merged)."""

    def __init__(self, backend: Any, max_batch: int) -> None:
        self.backend = backend
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._coalescers: dict[str, Coalescer[str, Any]] = {}

    def embed(self, data: list[str], **options: Any) -> list[Any]:
        """``backend.embed(data, **options)``, batched with the calls of other threads."""
        key = repr(sorted(options.items()))
        with self._lock:
            coalescer = self._coalescers.get(key)
            if coalescer is None:
                coalescer = self._coalescers[key] = Coalescer(
                    lambda texts: list(self.backend.embed(texts, **options)), max_batch=self.max_batch
                )
        return coalescer(list(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)  # the model, its device: whatever else callers read


def coalesce_query_embedders(pipelines: Iterable[Pipeline], max_batch: int) -> int:
    """Put every loaded text embedder of ``pipelines`` behind a :class:`CoalescedBackend`.

    Embedders sharing one loaded model (the full and the retrieval-only pipeline) share one coalescer, so
    questions batch together whichever route asked them. Call after the pipelines are warmed up.

    :returns: The number of embedders changed.
    """
    from ragship.components.embedders import TextEmbedder

    shared: dict[int, CoalescedBackend] = {}
    changed = 0
    for pipeline in pipelines:
        for _, instance in pipeline.walk():
            backend = getattr(instance, "embedding_backend", None)
            if not isinstance(instance, TextEmbedder) or backend is None or isinstance(backend, CoalescedBackend):
                continue
            instance.embedding_backend = shared.setdefault(id(backend), CoalescedBackend(backend, max_batch))  # type: ignore[assignment]
            changed += 1
    return changed
