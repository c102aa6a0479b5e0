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

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ragship.enums import RetrievalMode
from ragship.errors import ConfigError
from ragship.settings.application import (
    DEFAULT_EMBEDDING_MODEL,
    SERVICE_URL_PATTERN,
    DataSettings,
    MLflowSettings,
    OpenAISettings,
    ServingSettings,
)
from ragship.settings.infrastructure import (
    ElasticsearchSettings,
    LocalElasticsearchSettings,
    LocalLlamaSettings,
    LocalRabbitmqSettings,
    LocalRedisSettings,
    QueueSettings,
    WorkerSettings,
)
from ragship.settings.observability import ShadowSettings, TracingSettings
from ragship.settings.security import AccessSettings, AuthSettings
from ragship.settings.stores import EmbeddedStoreSettings

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "SERVICE_URL_PATTERN",
    "AccessSettings",
    "AuthSettings",
    "DataSettings",
    "ElasticsearchSettings",
    "EmbeddedStoreSettings",
    "LocalElasticsearchSettings",
    "LocalLlamaSettings",
    "LocalRabbitmqSettings",
    "LocalRedisSettings",
    "MLflowSettings",
    "OpenAISettings",
    "QueueSettings",
    "ServingSettings",
    "Settings",
    "ShadowSettings",
    "TracingSettings",
    "WorkerSettings",
    "get_settings",
    "load_settings",
    "redacted_url",
]


def _default_onnx_cache() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ragship" / "onnx"


def _config_file() -> Path:
    return Path(os.environ.get("RAGSHIP_CONFIG_FILE", "ragship.toml"))


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
    local_llama: LocalLlamaSettings = Field(default_factory=LocalLlamaSettings)  # type: ignore[arg-type]
    worker: WorkerSettings = Field(default_factory=WorkerSettings)  # type: ignore[arg-type]
    embedded: EmbeddedStoreSettings = Field(default_factory=EmbeddedStoreSettings)  # type: ignore[arg-type]
    auth: AuthSettings = Field(default_factory=AuthSettings)  # type: ignore[arg-type]
    access: AccessSettings = Field(default_factory=AccessSettings)  # type: ignore[arg-type]
    data: DataSettings = Field(default_factory=DataSettings)  # type: ignore[arg-type]
    tracing: TracingSettings = Field(default_factory=TracingSettings)  # type: ignore[arg-type]
    shadow: ShadowSettings = Field(default_factory=ShadowSettings)  # type: ignore[arg-type]

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

    @property
    def datasets_dir(self) -> Path:
        """Where datasets are downloaded to and looked up by name: the ``data.dir`` setting, else home/datasets."""
        return self.data.dir or self.home / "datasets"

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
