"""Answers that arrive in pieces: the pipeline runs in a worker thread and hands its tokens to the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio.to_thread

Event = tuple[str, Any]  # ("token", str) repeated, then ("answer", the answer) or ("error", the exception)


class AnswerStream:
    """Runs ``produce(on_token)`` in an AnyIO worker thread (so the dependency clients can call back into this
    event loop, and the request's context, its access scope included, goes along) and yields its events.

    Usage::

        stream = AnswerStream(lambda on_token: engine.ask(question, on_token=on_token))
        kind, value = await stream.start()  # an "error" here still gets a real status line
        while kind == "token":
            ...
            kind, value = await stream.next()
        await stream.finish()
    """

    def __init__(self, produce: Callable[[Callable[[str], None]], Any]) -> None:
        self._produce = produce
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._worker: asyncio.Future[None] | None = None

    async def start(self) -> Event:
        """Start the run; its first event."""
        loop = asyncio.get_running_loop()

        def emit(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(self._events.put_nowait, (kind, value))

        def work() -> None:
            try:
                emit("answer", self._produce(lambda token: emit("token", token)))
            except Exception as e:
                emit("error", e)

        self._worker = asyncio.ensure_future(anyio.to_thread.run_sync(work))
        return await self.next()

    async def next(self) -> Event:
        """The next event."""
        return await self._events.get()

    async def finish(self) -> None:
        """Wait for the worker thread to end."""
        if self._worker is not None:
            await self._worker
