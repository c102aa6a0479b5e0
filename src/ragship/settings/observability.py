"""Settings of what production shows: OpenTelemetry traces (``RAGSHIP_TRACING__*``) and the shadow
challenger on live traffic (``RAGSHIP_SHADOW__*``); docs/observability.md. Part of :mod:`ragship.settings`.

Tracing is off unless ``endpoint`` is set: then no tracing SDK is set up and every span is the API's no-op one.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class TracingSettings(BaseModel):
    """Where spans go (OTLP over HTTP), how many requests are traced and what a span may hold."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = Field(
        None,
        pattern=r"(?i)^https?://\S+$",
        description=(
            "OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces or an MLflow server's "
            "http://mlflow:5000/v1/traces. Unset: tracing is off and costs nothing."
        ),
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description=(
            "Headers sent with each export, as JSON (an MLflow receiver needs x-mlflow-experiment-id; a "
            "collector's token rides here). Treated as secrets."
        ),
    )
    sample_ratio: float = Field(
        1.0, ge=0.0, le=1.0, description="Share of requests traced (a request's trace id decides, in every process)."
    )
    service_name: str = Field(
        "ragship-worker",
        min_length=1,
        max_length=100,
        description="service.name of processes outside BentoML (the queue worker); BentoML names its services.",
    )
    record_question: bool = Field(
        False, description="Put the question text on the request's span (attribute ragship.question)."
    )
    timeout_s: int = Field(10, ge=1, le=300, description="Timeout of one export.")


class ShadowSettings(BaseModel):
    """A second spec answering a sample of live questions in the background (see docs/observability.md)."""

    enabled: bool = Field(False, description="Run the challenger on sampled live questions.")
    challenger: str = Field(
        "models:/ragship@challenger",
        description="The challenger spec: a registered model URI (the `challenger` alias) or a spec file.",
    )
    store: str | None = Field(
        None,
        description="The challenger's store (directory or Elasticsearch URL); the served store when unset.",
    )
    sample_ratio: float = Field(0.1, ge=0.0, le=1.0, description="Share of answered questions shadowed (0 to 1).")
    max_concurrent: int = Field(
        2, ge=1, le=64, description="Challenger runs in flight per API worker; a question beyond them is skipped."
    )
    max_busy: int = Field(
        4,
        ge=0,
        le=10_000,
        description="Skip shadowing while more user questions than this are in flight in the worker (saturated).",
    )
    experiment: str = Field("ragship-shadow", description="MLflow experiment of the shadow runs.")
    log_every: int = Field(1, ge=1, le=10_000, description="Log to MLflow every Nth shadowed question.")
