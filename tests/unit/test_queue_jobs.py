"""The job queue without Redis: settings, key layout, job state parsing, limits, errors at the HTTP edge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragship.errors import ConfigError
from ragship.local.redis_server import LocalRedis
from ragship.queue.broker import Keys
from ragship.queue.client import JobQueue, redacted_url
from ragship.queue.job_state import (
    Job,
    JobNotFoundError,
    JobStatus,
    JobTooLargeError,
    QueueFullError,
    QueueUnavailableError,
    queue_errors,
)
from ragship.serving.http import response_for
from ragship.settings import load_settings


def test_queue_settings_are_bounded_and_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGSHIP_QUEUE__MAX_RETRIES", "-1")
    with pytest.raises(ConfigError, match=r"queue\.max_retries.*'-1'"):
        load_settings()
    monkeypatch.delenv("RAGSHIP_QUEUE__MAX_RETRIES")
    monkeypatch.setenv("RAGSHIP_QUEUE__NAMESPACE", "has space")
    with pytest.raises(ConfigError, match=r"queue\.namespace"):
        load_settings()
    monkeypatch.delenv("RAGSHIP_QUEUE__NAMESPACE")
    monkeypatch.setenv("RAGSHIP_WORKER__EMBEDDER_URL", "http://embedder:3000")
    monkeypatch.setenv("RAGSHIP_QUEUE__PASSWORD", "hunter2-secret")
    settings = load_settings()
    assert settings.worker.embedder_url == "http://embedder:3000"
    assert "hunter2-secret" not in repr(settings.masked())


def test_the_waiting_list_is_the_one_keda_reads() -> None:
    keys = Keys.of(load_settings().queue)
    assert keys.waiting == "ragship:indexing"
    assert keys.dead == "ragship:indexing.XQ" and keys.messages == "ragship:indexing.msgs"
    assert keys.job("abc") == "ragship:job:abc"


def test_job_state_parses_from_its_hash() -> None:
    raw = {
        b"status": b"done",
        b"kind": b"paths",
        b"sources": b"10",
        b"attempts": b"2",
        b"redeliveries": b"1",
        b"pid": b"4242",
        b"counts": json.dumps({"added": 7, "unchanged": 3}).encode(),
        b"failures": b"[]",
        b"error": b"",
        b"submitted_at": b"1.5",
    }
    job = Job.from_redis("j1", raw)
    assert job.status == JobStatus.DONE and job.status.final
    assert job.counts == {"added": 7, "unchanged": 3} and job.redeliveries == 1 and job.error is None
    assert not JobStatus.RETRYING.final and JobStatus.DEAD_LETTERED.final


def test_size_limits_are_checked_before_any_broker_call() -> None:
    queue = JobQueue(load_settings(queue={"url": "redis://127.0.0.1:1/0", "max_job_documents": 2}).queue)
    with pytest.raises(JobTooLargeError, match="MAX_JOB_DOCUMENTS"):
        queue.submit_documents({f"{i}.md": b"x" for i in range(3)})
    with pytest.raises(JobTooLargeError, match="MAX_JOB_DOCUMENTS"):
        queue.submit_paths(["a.md", "b.md", "c.md"])
    small = JobQueue(load_settings(queue={"url": "redis://127.0.0.1:1/0", "max_job_bytes": 1024}).queue)
    with pytest.raises(JobTooLargeError, match="MAX_JOB_BYTES"):
        small.submit_documents({"big.md": b"x" * 2000})


def test_queue_errors_answer_with_their_status() -> None:
    full = response_for(QueueFullError("The indexing queue is full.", retry_after=9))
    assert full.status_code == 503 and full.headers["Retry-After"] == "9"
    assert response_for(JobTooLargeError("too many")).status_code == 413
    assert response_for(JobNotFoundError("no job")).status_code == 404
    down = response_for(QueueUnavailableError("Redis cannot be reached"))
    assert down.status_code == 503 and down.headers["Retry-After"] == "5"


def test_redis_connection_failures_become_queue_unavailable() -> None:
    import redis

    mapped = queue_errors(redis.ConnectionError("Connection refused"))
    assert isinstance(mapped, QueueUnavailableError) and "RAGSHIP_QUEUE__URL" in str(mapped)
    other = ValueError("x")
    assert queue_errors(other) is other
    assert redacted_url("redis://:s3cret@redis.internal:6380/1") == "redis://redis.internal:6380/1"
    assert redacted_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_local_redis_config_is_durable_loopback_and_never_evicts(tmp_path: Path) -> None:
    server = LocalRedis(load_settings().local_redis, home=tmp_path)
    config = server._config(6399, "pw-123")
    for line in (
        "bind 127.0.0.1",
        "port 6399",
        "appendonly yes",
        "appendfsync everysec",
        "maxmemory-policy noeviction",
    ):
        assert line in config.splitlines()
    assert 'requirepass "pw-123"' in config
    assert "requirepass" not in server._config(6399, None)
    assert server.dir == (tmp_path / "redis" / "default").absolute()
    assert not server.status().running


def test_the_url_scheme_picks_the_broker_and_rabbitmq_needs_a_state_url() -> None:
    from ragship.queue.broker import SCHEMES, BrokerKind, broker_kind, state_url

    redis_queue = load_settings(queue={"url": "rediss://cache.internal:6380/0"}).queue
    assert broker_kind(redis_queue) == BrokerKind.REDIS and state_url(redis_queue) == redis_queue.url
    rabbit = load_settings(queue={"url": "amqps://app:s3cret@mq.internal:5671/%2F"}).queue
    assert broker_kind(rabbit) == BrokerKind.RABBITMQ
    with pytest.raises(ConfigError, match="RAGSHIP_QUEUE__STATE_URL") as missing:
        state_url(rabbit)
    assert "s3cret" not in str(missing.value)
    with pytest.raises(ConfigError, match="RAGSHIP_QUEUE__STATE_URL must be a Redis URL"):
        state_url(load_settings(queue={"url": rabbit.url, "state_url": "amqp://mq/%2F"}).queue)
    paired = load_settings(queue={"url": rabbit.url, "state_url": "redis://state:6379/2"}).queue
    assert state_url(paired) == "redis://state:6379/2"
    with pytest.raises(ConfigError, match=r"RAGSHIP_QUEUE__URL .*kafka://.*redis://, rediss://, amqp://, amqps://"):
        broker_kind(load_settings(queue={"url": "kafka://broker:9092"}).queue)
    with pytest.raises(ConfigError, match="RAGSHIP_QUEUE__STATE_URL"):
        JobQueue(rabbit)  # refused at construction, before any connection
    assert set(SCHEMES.values()) == set(BrokerKind)


def test_rabbitmq_queues_are_quorum_queues_with_dead_letters() -> None:
    from ragship.queue.broker import open_broker
    from ragship.queue.rabbitmq import QuorumRabbitmqBroker, RabbitmqQueueReader
    from ragship.queue.reader import RedisQueueReader, open_reader

    settings = load_settings(
        queue={"url": "amqp://guest:guest@127.0.0.1:1/%2F", "state_url": "redis://127.0.0.1:1/0", "delivery_limit": 7}
    ).queue
    broker = open_broker(settings)  # connects on first use, not here
    assert isinstance(broker, QuorumRabbitmqBroker) and broker.confirm_delivery
    arguments = broker._build_queue_arguments("indexing")
    assert arguments == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "indexing.XQ",
        "x-delivery-limit": 7,
    }
    assert "x-max-priority" not in arguments  # quorum queues refuse it
    assert isinstance(open_reader(settings), RabbitmqQueueReader)
    assert isinstance(open_reader(load_settings(queue={"url": "redis://127.0.0.1:1/0"}).queue), RedisQueueReader)


def test_rabbitmq_connection_failures_become_queue_unavailable_without_secrets() -> None:
    import dramatiq.errors
    import pika.exceptions

    for error in (
        pika.exceptions.AMQPConnectionError("amqp://app:s3cret@mq:5672"),
        dramatiq.errors.ConnectionClosed(Exception("amqp://app:s3cret@mq:5672")),
    ):
        mapped = queue_errors(error)
        assert isinstance(mapped, QueueUnavailableError) and "RAGSHIP_QUEUE__URL" in str(mapped)
        assert "s3cret" not in str(mapped)
    assert redacted_url("amqps://app:s3cret@mq.internal:5671/%2F") == "amqps://mq.internal:5671/%2F"


def test_config_show_masks_passwords_in_broker_urls() -> None:
    settings = load_settings(
        queue={"url": "amqps://app:s3cret@mq.internal:5671/%2F", "state_url": "rediss://:t0ken@state:6380/0"}
    )
    shown = json.dumps(settings.masked())
    assert "s3cret" not in shown and "t0ken" not in shown
    assert "amqps://mq.internal:5671/%2F" in shown
