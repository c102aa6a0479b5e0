"""Typed settings: the one place that reads the environment and holds defaults.

Values come, highest priority first, from keyword arguments, ``RAGSHIP_*`` environment
variables, a ``.env`` file, a ``ragship.toml`` file in the working directory (or the file named
by ``RAGSHIP_CONFIG_FILE``), and the defaults below.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ragship.enums import AccessDefault, QueryModels, RetrievalMode
from ragship.errors import ConfigError

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# A BentoML service reached over HTTP: one http(s) URL without a path (the client adds the route).
SERVICE_URL_PATTERN = r"(?i)^https?://[^/\s]+/?$"


def _default_es_home() -> Path:
    # As root, Elasticsearch runs as an unprivileged user who cannot enter /root: keep it outside.
    if os.geteuid() == 0:
        return Path("/var/cache/ragship/elasticsearch")
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ragship" / "elasticsearch"


def _default_onnx_cache() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ragship" / "onnx"


def _config_file() -> Path:
    return Path(os.environ.get("RAGSHIP_CONFIG_FILE", "ragship.toml"))


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


class OpenAISettings(BaseModel):
    """An OpenAI-compatible chat-completions endpoint."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(None, description="Base URL, e.g. http://localhost:8000/v1.")
    model: str = Field("gpt-4o-mini", description="Model name sent to the endpoint.")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="Name of the environment variable holding the key (never the key)."
    )
    timeout_s: float = Field(60.0, gt=0, le=600, description="Request timeout.")


class MLflowSettings(BaseModel):
    """Where runs, artifacts and registered models go."""

    model_config = ConfigDict(extra="forbid")

    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI (http(s) server); a sqlite database under home when unset."
    )
    experiment: str = Field("ragship-eval", description="Experiment of evaluation runs.")
    registered_model: str = Field("ragship", description="Registry name of the pipeline spec model.")
    primary_metric: str = Field("ndcg_at_10", description="Metric the promotion gate compares.")
    request_timeout_s: int = Field(10, ge=1, le=600, description="HTTP timeout towards an MLflow server.")
    trace_queries: int = Field(20, ge=0, le=100_000, description="Queries per evaluation traced in MLflow.")


class ServingSettings(BaseModel):
    """The BentoML services: what they serve, who may call them, and their limits."""

    model_config = ConfigDict(extra="forbid")

    spec: str | None = Field(
        None,
        description=(
            "Spec to serve: a YAML path or a models:/ URI. Unset: the registered champion when there is one, "
            "else the top-level spec setting, else the built-in default."
        ),
    )
    api_key: SecretStr | None = Field(None, description="Required in the API key header when set.")
    api_key_header: str = Field("x-api-key", description="Header carrying the API key.")
    keys_file: Path | None = Field(
        None,
        description="Per-principal API keys (`ragship keys add`): a JSON file of salted scrypt hashes, shared by "
        "every replica; unset: only api_key and OIDC tokens are accepted.",
    )
    keys_reload_ms: int = Field(
        1000, ge=0, le=3_600_000, description="How often at most the keys file is checked for changes (revocations)."
    )
    rate_per_minute: int = Field(
        600, ge=0, le=1_000_000, description="Requests per minute per principal (token bucket; 0: no limit)."
    )
    max_concurrent_per_principal: int = Field(
        16, ge=0, le=10_000, description="Requests in flight per principal and process (0: no limit)."
    )
    shared_limits: bool = Field(
        False,
        description="Count the per-principal limits in the queue's Redis, shared by every replica (off: each "
        "process counts its own).",
    )
    index_submissions_per_hour: int = Field(
        120, ge=0, le=1_000_000, description="Index submissions per hour per principal, admins excepted (0: no limit)."
    )
    max_request_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=1024**3, description="Larger request bodies get 413.")
    max_question_chars: int = Field(2000, ge=10, le=100_000, description="Longer questions get 400.")
    max_top_k: int = Field(50, ge=1, le=1000, description="Largest top_k a request may ask for.")
    timeout_s: float = Field(60.0, gt=0, le=3600, description="Per-request timeout of the query API.")
    max_concurrency: int = Field(64, ge=1, le=10_000, description="Requests in flight per query worker; more get 503.")
    threads: int = Field(16, ge=1, le=512, description="Threads running pipelines per query worker.")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Worker processes of the query API (one already fills 2 cores: concurrent questions share "
        "model calls; benchmarks/README.md).",
    )
    embedder_max_batch_size: int = Field(
        64, ge=2, le=4096, description="Adaptive batching: largest batch (texts), in the Embedder and the query API."
    )
    embedder_max_latency_ms: int = Field(
        10_000,
        ge=1,
        le=60_000,
        description="Adaptive batching: latency budget; BentoML sheds (503) requests it predicts would exceed it.",
    )
    embedder_batching: bool = Field(
        True,
        description="Adaptive batching of embedding: the Embedder merges concurrent requests, and a query API that "
        "runs the query models itself (query_models) encodes concurrent questions together (off: one call each).",
    )
    query_threads: int | None = Field(
        1,
        ge=1,
        le=256,
        description="Intra-op threads of torch and of numpy's BLAS in the query API process; unset: their "
        "defaults (one per core).",
    )
    query_models: QueryModels = Field(
        QueryModels.AUTO,
        description="Where the query API runs the query embedder and cross-encoder: api (in process), service "
        "(the Embedder), auto (api without a GPU unless embedder_url is set; benchmarks/README.md has the figures).",
    )
    feedback_experiment: str = Field("ragship-feedback", description="MLflow experiment that receives feedback.")
    embedder_url: str | None = Field(
        None,
        pattern=SERVICE_URL_PATTERN,
        description="URL of an Embedder deployed on its own (e.g. http://ragship-embedder:3000); "
        "unset: `bentoml serve` starts the Embedder beside the service that depends on it.",
    )
    generator_url: str | None = Field(
        None,
        pattern=SERVICE_URL_PATTERN,
        description="URL of a Generator deployed on its own (e.g. http://ragship-generator:3000); "
        "unset: `bentoml serve` starts the Generator beside the RAG API.",
    )


class AuthSettings(BaseModel):
    """Bearer tokens (JWTs) from an OIDC provider: where its signing keys are and which claims to trust."""

    model_config = ConfigDict(extra="forbid")

    jwks_url: str | None = Field(
        None, pattern=r"(?i)^https?://\S+$", description="The provider's JWKS URL (its jwks_uri); wins over jwks_file."
    )
    jwks_file: Path | None = Field(None, description="A JWKS JSON file (keys mounted from a Secret).")
    issuer: str | None = Field(None, description="Required `iss` of tokens; tokens are refused while it is unset.")
    audience: str | None = Field(None, description="Required `aud` of tokens (the client id of ragship).")
    groups_claim: str = Field("groups", description="Claim holding the principal's groups (a list or a string).")
    name_claim: str = Field("sub", description="Claim naming the principal in job and feedback records.")
    scopes_claim: str = Field("scope", description="Claim holding ragship scopes (space-separated or a list).")
    default_scopes: list[str] = Field(
        ["query", "feedback"], description="Scopes of a token whose scopes claim names none of ragship's."
    )
    algorithms: list[str] = Field(["RS256", "ES256"], description="Signature algorithms accepted.")
    leeway_s: int = Field(30, ge=0, le=600, description="Clock skew allowed on exp / nbf.")

    @property
    def enabled(self) -> bool:
        """Whether bearer JWTs are checked at all (a key source and an issuer are set)."""
        return bool((self.jwks_url or self.jwks_file) and self.issuer)


class AccessSettings(BaseModel):
    """Which groups may read a document: marks in the document win, then path rules, then the default."""

    model_config = ConfigDict(extra="forbid")

    default: AccessDefault = Field(
        AccessDefault.PUBLIC, description="What a document with no groups is: public (everyone) or deny (admins)."
    )
    rules: dict[str, list[str]] = Field(
        {},
        description="Glob on the source name -> groups, for files that carry no access mark, e.g. "
        '{"reports/finance/**": ["finance"]}; the first matching glob wins.',
    )


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


class Settings(BaseSettings):
    """All of ragship's settings. Nested fields use ``__`` in env names (RAGSHIP_ES__URL)."""

    model_config = SettingsConfigDict(
        env_prefix="RAGSHIP_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    home: Path = Field(Path(".ragship"), description="Working data: embedded store, manifests, runs.")
    store: str | None = Field(
        None,
        description="Store: a directory (embedded) or an http(s) URL (Elasticsearch). Default: home/store.",
    )
    spec: Path | None = Field(None, description="Pipeline spec YAML; the built-in default when unset.")
    embedding_model: str = Field(DEFAULT_EMBEDDING_MODEL, description="Sentence-transformers path or hub id.")
    device: str | None = Field(None, description="Torch device for models (cuda, cpu); auto when unset.")
    onnx_cache: Path = Field(
        default_factory=_default_onnx_cache,
        description="Where the embedders' ONNX exports are cached (backend onnx / onnx-int8), one folder per model.",
    )
    mode: RetrievalMode = Field(
        RetrievalMode.HYBRID,
        description="Retrieval mode of the built-in spec and `ragship spec init` (a spec file keeps its own).",
    )
    top_k: int = Field(
        5, ge=1, le=1000, description="Sources per answer in the built-in spec and `ragship spec init` (likewise)."
    )
    max_file_bytes: int | None = Field(
        None, ge=1, description="Refuse larger files at indexing; overrides the spec's converter limit."
    )
    index_batch_files: int = Field(32, ge=1, le=10_000, description="Files converted per indexing batch.")
    es: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)  # type: ignore[arg-type]
    local_es: LocalElasticsearchSettings = Field(default_factory=LocalElasticsearchSettings)  # type: ignore[arg-type]
    openai: OpenAISettings = Field(default_factory=OpenAISettings)  # type: ignore[arg-type]
    mlflow: MLflowSettings = Field(default_factory=MLflowSettings)  # type: ignore[arg-type]
    serving: ServingSettings = Field(default_factory=ServingSettings)  # type: ignore[arg-type]
    queue: QueueSettings = Field(default_factory=QueueSettings)  # type: ignore[arg-type]
    local_redis: LocalRedisSettings = Field(default_factory=LocalRedisSettings)  # type: ignore[arg-type]
    local_rabbitmq: LocalRabbitmqSettings = Field(default_factory=LocalRabbitmqSettings)  # type: ignore[arg-type]
    worker: WorkerSettings = Field(default_factory=WorkerSettings)  # type: ignore[arg-type]
    auth: AuthSettings = Field(default_factory=AuthSettings)  # type: ignore[arg-type]
    access: AccessSettings = Field(default_factory=AccessSettings)  # type: ignore[arg-type]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, dotenv_settings, toml, file_secret_settings)

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: the configured server, else a sqlite database under ``home``."""
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> str:
        """Artifact location for experiments on the local sqlite store."""
        return (self.home / "mlartifacts").resolve().as_uri()

    @property
    def store_location(self) -> str:
        """Where the store lives: the configured one, else the embedded store under ``home``."""
        return self.store or str(self.home / "store")

    def masked(self) -> dict[str, Any]:
        """Effective settings as plain data with secrets shown as ``**********``."""
        return _mask(self.model_dump(mode="python"))


def redacted_url(url: str) -> str:
    """A URL safe for logs, messages, MLflow and serialized stores: the one redaction rule of ragship.

    Credentials (user and password), the query (where API keys and tokens ride) and the fragment go; a
    comma-separated list of URLs (an Elasticsearch cluster's nodes) is redacted URL by URL; text that is
    no URL (a directory) comes back as it is.
    """
    from urllib.parse import urlsplit, urlunsplit

    if "," in url and "://" in url:
        return ",".join(redacted_url(part) for part in url.split(","))
    try:
        parts = urlsplit(url)
    except ValueError:  # unparseable (a bad IPv6 host): keep only the scheme, nothing after it can be trusted
        return f"{url.partition('://')[0]}://***" if "://" in url else "***"
    if not parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _mask(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "**********"
    if isinstance(value, str) and "://" in value:
        return redacted_url(value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one readable :class:`ConfigError`."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})" for err in e.errors()
        )
        raise ConfigError(f"Invalid ragship settings: {problems}. Fix the RAGSHIP_* variable or ragship.toml.") from e


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()
