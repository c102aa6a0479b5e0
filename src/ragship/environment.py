"""Process-wide environment tweaks: offline model hubs, quiet third-party progress, no telemetry, bounded
MLflow HTTP calls, and secrets read by variable name. The one other place besides settings that reads the
environment."""

from __future__ import annotations

import os


def hub_offline() -> bool:
    """Whether Hugging Face hub access is switched off (HF_HUB_OFFLINE)."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def env_secret(name: str) -> str | None:
    """Read a secret from the environment by variable name (used for endpoint keys)."""
    return os.environ.get(name) or None


def quiet_third_party_progress() -> None:
    """Silence the progress bars of Hugging Face model loading and MLflow artifact downloads (ragship shows its own)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def disable_phone_home() -> None:
    """Switch off third-party usage telemetry unless the user explicitly opted in.

    ragship runs in private networks; libraries must not send usage data anywhere by default.
    """
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def configure_mlflow_client(timeout_s: int) -> None:
    """Bound MLflow's HTTP calls so a missing server fails fast instead of hanging."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(timeout_s))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
