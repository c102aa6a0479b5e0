"""Ragship's exceptions. Every message says what went wrong and how to fix it."""

from __future__ import annotations


class RagshipError(Exception):
    """Base class of every error ragship raises on purpose."""


class ConfigError(RagshipError):
    """A setting is missing or has a bad value."""


class SpecError(RagshipError):
    """A pipeline spec file is malformed or inconsistent."""


class StoreError(RagshipError):
    """The document store refused an operation (wrong dimension, bad path, ...)."""


class StoreUnavailableError(StoreError):
    """The document store cannot be reached."""


class ModelError(RagshipError):
    """A model could not be resolved or loaded."""


class ConversionError(RagshipError):
    """A file could not be turned into documents."""


class ModelServiceUnavailableError(RagshipError):
    """A service that runs a model (embedder, generator) cannot be reached or is overloaded."""


class TrackingError(RagshipError):
    """MLflow is unreachable, or a run/model is not what an operation needs."""


class QueueError(RagshipError):
    """The job queue could not take, find or run a job (broker down, queue full, job too large)."""
