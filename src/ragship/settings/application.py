"""Settings of what ragship serves and records: the OpenAI-compatible endpoint, MLflow, the BentoML services and
the evaluation datasets. Part of :mod:`ragship.settings`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ragship.enums import QueryModels

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# A BentoML service reached over HTTP: one http(s) URL without a path (the client adds the route).
SERVICE_URL_PATTERN = r"(?i)^https?://[^/\s]+/?$"


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
    max_history_turns: int = Field(
        10, ge=0, le=1000, description="Earlier user turns a request may send as history (each as long as a question)."
    )
    chat_max_messages: int = Field(
        200, ge=1, le=100_000, description="Messages in one /v1/chat/completions request; more get 400."
    )
    chat_max_message_chars: int = Field(
        50_000,
        ge=100,
        le=10_000_000,
        description="Characters in one chat message (earlier turns, pasted answers); longer ones get 400. The "
        "question itself (the last user message) is held to max_question_chars.",
    )
    chat_sources_in_content: bool = Field(
        True,
        description="Append a short 'Sources: [1] docs/x.md ...' block to each chat answer's content, for chat UIs "
        "that show only content (Open WebUI); the sources always travel in the response's `sources` field too.",
    )
    timeout_s: float = Field(60.0, gt=0, le=3600, description="Per-request timeout of the query API.")
    max_concurrency: int = Field(64, ge=1, le=10_000, description="Requests in flight per query worker; more get 503.")
    threads: int = Field(16, ge=1, le=512, description="Threads running pipelines per query worker.")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Worker processes of the query API. One is bound by its process's GIL: on 2 cores, one per "
        "core gave 1.70x the 16-client throughput, each holding its own copy of the query models "
        "(benchmarks/README.md).",
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


class DataSettings(BaseModel):
    """Evaluation datasets: where ``ragship data get NAME`` puts them and ``--dataset NAME`` finds them."""

    model_config = ConfigDict(extra="forbid")

    dir: Path | None = Field(
        None,
        description="Folder of downloaded datasets, one sub-folder per name (tests point it at a shared copy); "
        "unset: home/datasets.",
    )
    mirror: str | None = Field(
        None,
        pattern=r"(?i)^https?://\S+$",
        description="Base URL of a mirror serving NAME.zip (e.g. a company proxy); unset: each dataset's published "
        "location. The archives' published checksums still apply.",
    )
    timeout_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Connect and read timeout of a download; a longer stall breaks it off (`get` again resumes).",
    )
