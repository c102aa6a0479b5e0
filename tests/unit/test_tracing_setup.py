"""Tracing: off costs nothing; on, Haystack's component spans keep names and types but no content, and a job
message carries the submitter's trace context (an in-memory SDK exporter receives the spans)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from haystack import Pipeline, component
from haystack import tracing as haystack_tracing
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ragship.observability import tracing
from ragship.settings import TracingSettings, load_settings


@component
class Echo:
    @component.output_types(text=str)
    def run(self, text: str) -> dict[str, Any]:
        return {"text": text.upper()}


@pytest.fixture
def exported() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    haystack_tracing.enable_tracing(tracing._haystack_tracer(provider.get_tracer("haystack")))
    try:
        yield provider.get_tracer("test"), exporter
    finally:
        haystack_tracing.disable_tracing()


def test_off_by_default_sets_nothing_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # Haystack's tracer is process-global: another test in this process (or Haystack's own auto-detection of
    # an OpenTelemetry provider) may have set one. What matters is that tracing off sets none up.
    haystack_tracing.disable_tracing()
    # Another library (MLflow does) may have set a global provider in this process: ragship's spans stay no-op.
    monkeypatch.setattr(trace, "get_tracer_provider", TracerProvider)
    settings = load_settings().tracing
    assert settings.endpoint is None and settings.record_question is False
    assert tracing.bentoml_tracing(settings) == {}
    assert tracing.start_tracing(settings) is False and tracing.start_bentoml_tracing(settings) is False
    assert not haystack_tracing.is_tracing_enabled() and not tracing.tracing_enabled()
    assert tracing.job_trace_context() == {}
    assert not tracing.tracer().start_span("x").is_recording()  # the API's no-op span


def test_component_spans_hold_names_and_types_but_no_content(
    exported: tuple[trace.Tracer, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(haystack_tracing.tracer, "is_content_tracing_enabled", True)  # asked for: still dropped
    pipeline = Pipeline(metadata={"owner": "secret question"})
    pipeline.add_component("echo", Echo())
    assert pipeline.run({"echo": {"text": "secret question"}}) == {"echo": {"text": "SECRET QUESTION"}}
    spans = exported[1].get_finished_spans()
    run = next(s for s in spans if s.name == "haystack.component.run")
    assert run.attributes is not None
    assert run.attributes["haystack.component.name"] == "echo"
    assert run.attributes["haystack.component.type"] == "Echo"
    for span in spans:
        # An allowlist: names, types and counts only (no data, no metadata, no per-request JSON of socket specs).
        assert set(span.attributes or {}) <= tracing._KEPT_TAGS, span.attributes
        assert not any("question" in str(v).lower() for v in (span.attributes or {}).values()), span.attributes


def test_a_job_message_carries_the_submitters_trace(
    exported: tuple[trace.Tracer, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracing._State, "enabled", True)
    with exported[0].start_as_current_span("POST /index/submit") as submit:
        options = tracing.job_trace_context()
    parent = trace.get_current_span(tracing.job_parent(options)).get_span_context()
    assert parent.trace_id == submit.get_span_context().trace_id
    assert parent.span_id == submit.get_span_context().span_id
    assert trace.get_current_span(tracing.job_parent({})).get_span_context().is_valid is False


def test_the_question_is_recorded_only_when_allowed(
    exported: tuple[trace.Tracer, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    for allowed in (False, True):
        monkeypatch.setattr(tracing._State, "record_question", allowed)
        with exported[0].start_as_current_span(f"ask {allowed}"):
            tracing.note_question("Where do zebras live?")
    spans = {s.name: dict(s.attributes or {}) for s in exported[1].get_finished_spans()}
    assert tracing.QUESTION_ATTRIBUTE not in spans["ask False"]
    assert spans["ask True"][tracing.QUESTION_ATTRIBUTE] == "Where do zebras live?"


def test_bentoml_config_exports_at_the_ratio_and_keeps_headers_out_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", raising=False)
    settings = TracingSettings(
        endpoint="http://collector:4318/v1/traces",
        sample_ratio=0.5,
        headers={"x-mlflow-experiment-id": "7", "authorization": "Bearer tok"},  # type: ignore[dict-item]
    )
    config = tracing.bentoml_tracing(settings)["tracing"]
    assert config["sample_rate"] == 0.5 and config["otlp"] == {"protocol": "http", "endpoint": settings.endpoint}
    assert "tok" not in str(config)
    assert os.environ["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] == "x-mlflow-experiment-id=7,authorization=Bearer%20tok"


def test_a_bad_endpoint_is_refused_naming_the_setting() -> None:
    from ragship.errors import ConfigError

    with pytest.raises(ConfigError, match=r"tracing\.endpoint"):
        load_settings(tracing={"endpoint": "collector:4318"})


def test_the_asgi_middlewares_message_spans_are_never_recorded() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel = provider.get_tracer("test")  # made before, as BentoML's middleware makes its tracer
    tracing._drop_asgi_message_spans(provider.sampler)
    tracing._drop_asgi_message_spans(provider.sampler)  # twice: still one wrapper
    with otel.start_as_current_span("POST /ask", kind=trace.SpanKind.SERVER):
        for message in ("POST /ask http receive", "POST /ask http send"):
            with otel.start_as_current_span(message) as span:
                assert not span.is_recording()
        with otel.start_as_current_span("haystack.component.run") as span:
            assert span.is_recording()
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["POST /ask", "haystack.component.run"]
