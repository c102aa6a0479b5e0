"""Settings of what the API watches on live traffic: the shadow challenger (``RAGSHIP_SHADOW__*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
