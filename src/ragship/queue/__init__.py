"""Indexing jobs on a task queue: Dramatiq with a Redis broker.

* :mod:`ragship.queue.broker`: the Redis client, the Dramatiq broker and its middleware, the key layout.
* :mod:`ragship.queue.jobs`: job state (a Redis hash per job, with a TTL) and the errors of the queue.
* :mod:`ragship.queue.client`: submit jobs (with backpressure and size limits), read their state.
* :mod:`ragship.queue.actors`: what a worker runs for a job: the one indexing path, ``sync.Syncer``.
* :mod:`ragship.queue.worker`: the module ``dramatiq`` loads in worker processes (``ragship worker``).

Nothing here connects at import time; see ``docs/queue.md`` for the whole picture.
"""
