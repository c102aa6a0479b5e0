"""OpenTelemetry traces across ragship's processes: one trace per request (docs/observability.md#traces).

A BentoML service traces with BentoML's own tracer provider, configured from :class:`TracingSettings` by
:func:`bentoml_tracing` (its ASGI middleware opens each route's span and takes the caller's W3C
``traceparent``; its HTTP client sends the current one to the Embedder and Generator). Pipeline components
get spans from Haystack's OpenTelemetry tracer, wrapped so that no input, output or question reaches a span
unless ``record_question`` allows the question. A queued job carries its submitter's trace context in its
message (:func:`job_trace_context`), and the worker's ``queue.job_trace.JobTrace`` middleware continues it.

Off (no ``endpoint``): no SDK is set up, Haystack keeps its null tracer and the spans opened here are the
OpenTelemetry API's no-op ones.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind

from ragship.settings import TracingSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler

logger = logging.getLogger("ragship.tracing")

TRACER_NAME = "ragship"
QUESTION_ATTRIBUTE = "ragship.question"
# The key of a job message's options that carries the submitter's trace context (W3C traceparent).
MESSAGE_OPTION = "trace_context"
# Probes and scrapes: a span each would bury the requests.
EXCLUDED_URLS = ["/readyz", "/livez", "/healthz", "/metrics"]
# The ASGI middleware's spans per message of a request ("POST /ask http receive", "... http send").
_ASGI_MESSAGE_SPANS = (" http receive", " http send")
# The only Haystack tags a span keeps: names, types and counts. An allowlist, because other tags carry a
# pipeline's data (``haystack.pipeline.input_data``: the question, history, documents to index) or user-set
# metadata, and the socket specs and input types are the same on every request yet cost a JSON encoding each
# (a third of the spans' cost on /retrieve).
_KEPT_TAGS = frozenset(
    {
        "haystack.component.name",
        "haystack.component.type",
        "haystack.component.visits",
        "haystack.pipeline.execution_mode",
        "haystack.pipeline.max_runs_per_component",
    }
)


class _State:
    """What this process traces with (set once by :func:`start_tracing` or :func:`start_bentoml_tracing`)."""

    enabled = False
    record_question = False
    lock = threading.Lock()


def tracer() -> trace.Tracer:
    """ragship's tracer: the configured provider's when ragship tracing is on, else the API's no-op one (even
    where another library, MLflow for one, has set a global provider in this process)."""
    if not _State.enabled:
        return trace.NoOpTracer()
    return trace.get_tracer(TRACER_NAME)


def bentoml_tracing(settings: TracingSettings) -> dict[str, Any]:
    """Keyword arguments of a ``@bentoml.service``: ``tracing`` (OTLP/HTTP export of the sampled share) when on,
    none when off (BentoML's default: nothing sampled, nothing exported; an empty ``tracing={}`` would make
    BentoML drop the service's config).

    The export headers reach the exporter through ``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` in this process, not
    through this config, which a bento build records.
    """
    if not settings.endpoint:
        return {}
    if settings.headers:
        os.environ["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] = ",".join(
            f"{quote(k)}={quote(v.get_secret_value())}" for k, v in settings.headers.items()
        )
    tracing = {
        "exporter_type": "otlp",
        "sample_rate": settings.sample_ratio,
        "timeout": settings.timeout_s,
        "excluded_urls": EXCLUDED_URLS,
        "otlp": {"protocol": "http", "endpoint": settings.endpoint},
    }
    return {"tracing": tracing}


def start_bentoml_tracing(settings: TracingSettings) -> bool:
    """In a BentoML service process: Haystack and ragship spans join BentoML's provider (the one its route
    spans come from). Returns whether tracing is on."""
    if not settings.endpoint:
        return False
    from bentoml._internal.configuration.containers import BentoMLContainer

    provider = BentoMLContainer.tracer_provider.get()
    _drop_asgi_message_spans(provider.sampler)
    _install(provider, settings)
    return True


def _drop_asgi_message_spans(sampler: Sampler) -> None:
    """Make ``sampler`` never record the ASGI middleware's per-message spans (``POST /ask http receive`` and
    two ``http send``): they time the copying of a body in or out, which the route span already holds, and
    cost as much as the pipeline's spans together. In place, because BentoML's middleware made its tracer,
    which holds this sampler, before the service starts; and BentoML gives no way to pass the middleware's
    own ``exclude_spans``."""
    from opentelemetry.sdk.trace.sampling import Decision, SamplingResult

    if getattr(sampler, "_ragship_drops_message_spans", False):
        return
    inner = sampler.should_sample

    def should_sample(parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any) -> Any:
        if name.endswith(_ASGI_MESSAGE_SPANS):
            return SamplingResult(Decision.DROP)
        return inner(parent_context, trace_id, name, *args, **kwargs)

    sampler.should_sample = should_sample  # type: ignore[method-assign]
    sampler._ragship_drops_message_spans = True  # type: ignore[attr-defined]


def start_tracing(settings: TracingSettings, service_name: str | None = None) -> bool:
    """In a process outside BentoML (the queue worker): an SDK provider exporting to the settings' endpoint.
    Returns whether tracing is on."""
    if not settings.endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service_name or settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    exporter = OTLPSpanExporter(
        endpoint=settings.endpoint,
        headers={k: v.get_secret_value() for k, v in settings.headers.items()},
        timeout=settings.timeout_s,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _install(provider, settings)
    return True


def _install(provider: TracerProvider, settings: TracingSettings) -> None:
    from haystack import tracing as haystack_tracing

    with _State.lock:
        if _State.enabled:
            return
        trace.set_tracer_provider(provider)
        haystack_tracing.enable_tracing(_haystack_tracer(provider.get_tracer("haystack")))
        _State.enabled = True
        _State.record_question = settings.record_question
    logger.info("tracing %.0f%% of requests to %s", 100 * settings.sample_ratio, _endpoint_for_logs(settings))


def _endpoint_for_logs(settings: TracingSettings) -> str:
    from ragship.settings import redacted_url

    return redacted_url(settings.endpoint or "")


def note_question(question: str) -> None:
    """Put the question on the current span, only when ``record_question`` allows it."""
    if _State.record_question:
        trace.get_current_span().set_attribute(QUESTION_ATTRIBUTE, question)


# -- the queue ----------------------------------------------------------------------------------------------


def job_trace_context() -> dict[str, Any]:
    """Options for a job message: the submitter's trace context (``{}`` when tracing is off)."""
    if not _State.enabled:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {MESSAGE_OPTION: carrier} if carrier else {}


@contextlib.contextmanager
def submit_span(kind: str) -> Iterator[None]:
    """The span of putting a job on the queue (a no-op span when tracing is off)."""
    with tracer().start_as_current_span("queue submit", kind=SpanKind.PRODUCER, attributes={"ragship.job.kind": kind}):
        yield


def job_parent(options: dict[str, Any]) -> context.Context:
    """The trace context a job message carries (an empty context when it carries none)."""
    return propagate.extract(options.get(MESSAGE_OPTION) or {})


def tracing_enabled() -> bool:
    """Whether this process exports spans."""
    return _State.enabled


# -- Haystack -----------------------------------------------------------------------------------------------


def _haystack_tracer(otel_tracer: trace.Tracer) -> Any:
    """Haystack's OpenTelemetry tracer, keeping component names, types and timings but no content."""
    from haystack_integrations.tracing.opentelemetry import OpenTelemetrySpan, OpenTelemetryTracer

    class ContentFreeSpan(OpenTelemetrySpan):
        """Keeps only the allowlisted tags (names, types, counts); content tags (inputs, outputs) never pass."""

        def set_tag(self, key: str, value: Any) -> None:
            if key in _KEPT_TAGS:
                self._span.set_attribute(key, value if isinstance(value, (str, bool, int, float)) else str(value))

        def set_content_tag(self, key: str, value: Any) -> None:
            return  # questions and document text: never on a span, whatever HAYSTACK_CONTENT_TRACING_ENABLED says

    class ContentFreeTracer(OpenTelemetryTracer):
        """:class:`OpenTelemetryTracer` whose spans are :class:`ContentFreeSpan`."""

        @contextlib.contextmanager
        def trace(self, operation_name: str, tags: dict[str, Any] | None = None, parent_span: Any = None) -> Any:
            with self._tracer.start_as_current_span(operation_name) as raw_span:
                span = ContentFreeSpan(raw_span)
                if tags:
                    span.set_tags(tags)
                yield span

        def current_span(self) -> Any:
            current = trace.get_current_span()
            return None if isinstance(current, trace.NonRecordingSpan) else ContentFreeSpan(current)

    return ContentFreeTracer(otel_tracer)
