"""Indexing jobs on a task queue: Dramatiq with a Redis or a RabbitMQ broker, job state in Redis.

* :mod:`ragship.queue.broker`: the broker chosen by the URL's scheme, its middleware, the Redis client of
  job state, the key layout.
* :mod:`ragship.queue.rabbitmq`: the RabbitMQ broker on quorum queues and the reader of their counts.
* :mod:`ragship.queue.reader`: the one reader of the queue's figures (backpressure, status, metrics).
* :mod:`ragship.queue.counts`: what a reader reports (counts, dead letters).
* :mod:`ragship.queue.job_state`: job state (a Redis hash per job, with a TTL) and the errors of the queue.
* :mod:`ragship.queue.client`: submit jobs (with backpressure and size limits), read their state.
* :mod:`ragship.queue.actors`: what a worker runs for a job: the one indexing path, ``sync.Syncer``.
* :mod:`ragship.queue.worker`: the module ``dramatiq`` loads in worker processes (``ragship worker``).

Nothing here connects at import time; see ``docs/queue.md`` for the whole picture.
"""
