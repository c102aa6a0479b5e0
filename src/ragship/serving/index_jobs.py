"""Indexing jobs over HTTP: ``POST /index/submit`` and ``GET /index/status``, with their request schema.

``/index/submit`` puts the documents on the Dramatiq queue and answers at once (202) with the job id;
``/index/status?job_id=...`` reads the job's state from Redis (whatever the broker), so any replica answers
for any job. Workers (``ragship worker``) index through the one indexing path (``Syncer.index_documents``).
The queue's errors are ragship errors, so they answer like every route's (serving.http): 503 (broker
unreachable; queue full, with Retry-After), 413 (job too large), 404 (unknown job).
"""

from __future__ import annotations

import base64
import binascii
import functools
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, Literal

import bentoml
from pydantic import BaseModel, Field, field_validator, model_validator

from ragship.access.limits import PrincipalLimits
from ragship.components.converters import SUPPORTED_TYPES
from ragship.errors import PermissionDeniedError, QueueError, RateLimitedError
from ragship.queue.job_state import Job, JobNotFoundError, JobTooLargeError, QueueFullError
from ragship.serving.http import GetAsPost, http_errors, with_status
from ragship.serving.queue_metrics import METRICS, QueueMetrics
from ragship.serving.refusals import record_refusal

if TYPE_CHECKING:
    from ragship.queue.client import JobQueue


class IndexDocument(BaseModel):
    """One document to index: its name (``source``) and its content, as text or base64 bytes."""

    source: str = Field(
        min_length=1,
        max_length=1024,
        description="Name the document is cited and replaced by, e.g. notes/setup.md; its extension picks the parser.",
    )
    text: str | None = Field(None, description="Content of a text document (.md, .txt, .html, .jsonl).")
    content_base64: str | None = Field(None, description="Bytes of any supported file (e.g. a PDF), base64-encoded.")

    @field_validator("source")
    @classmethod
    def _known_type(cls, source: str) -> str:
        if "\x00" in source:
            raise ValueError("must not contain NUL characters")
        suffix = PurePosixPath(source).suffix.lower()
        if suffix not in SUPPORTED_TYPES:
            raise ValueError(f"extension {suffix or '(none)'!r} is not one of {sorted(SUPPORTED_TYPES)}")
        return source

    @model_validator(mode="after")
    def _one_content(self) -> IndexDocument:
        if (self.text is None) == (self.content_base64 is None):
            raise ValueError("give exactly one of text or content_base64")
        if self.content_base64 is not None:
            try:
                base64.b64decode(self.content_base64, validate=True)
            except binascii.Error as e:
                raise ValueError(f"content_base64 is not valid base64 ({e})") from e
        return self

    def content(self) -> bytes:
        """The document's bytes."""
        if self.text is not None:
            return self.text.encode("utf-8")
        return base64.b64decode(self.content_base64 or "")


MAX_DOCUMENTS = 1000
Documents = Annotated[list[IndexDocument], Field(min_length=1, max_length=MAX_DOCUMENTS)]


JobId = Annotated[str, Field(min_length=1, max_length=200, description="The id /index/submit answered with.")]


class JobAccepted(BaseModel):
    """The answer to a submission: the job's id, to follow at ``/index/status``."""

    job_id: str
    status: Literal["queued"] = "queued"


class IndexJobs:
    """The indexing job routes, for any service to inherit (the RAG API and the Indexing service).

    The queue connects on first use, so a service starts (and answers its probes) before Redis does.
    """

    _job_queue: JobQueue | None = None

    def job_queue(self) -> JobQueue:
        """The queue jobs go to (made on first use)."""
        if self._job_queue is None:
            from ragship.observability.tracing import start_bentoml_tracing
            from ragship.queue.client import JobQueue
            from ragship.settings import get_settings

            start_bentoml_tracing(get_settings().tracing)  # a job's message carries this request's trace
            self._job_queue = JobQueue(get_settings().queue)
        return self._job_queue

    @bentoml.api(route="/index/submit")
    @with_status(202)
    @http_errors
    def index_submit(self, documents: Documents) -> JobAccepted:
        """Queue ``documents`` for indexing; answers 202 with the job id at once.

        A caller may only submit documents marked for groups it is in (admins for any).
        """
        contents = {doc.source: doc.content() for doc in documents}
        submitter = check_submission(contents)
        try:
            job_id = self.job_queue().submit_documents(contents, submitted_by=submitter)
        except QueueError as e:
            full, too_large = isinstance(e, QueueFullError), isinstance(e, JobTooLargeError)
            outcome = "full" if full else "too_large" if too_large else "unavailable"
            METRICS.submissions.labels(outcome=outcome).inc()
            raise
        METRICS.submissions.labels(outcome="queued").inc()
        return JobAccepted(job_id=job_id)

    @bentoml.api(route="/index/status")
    @http_errors
    def index_status(self, job_id: JobId) -> Job:
        """The state of job ``job_id`` (also ``GET /index/status?job_id=...``); only its submitter's (or an admin's)."""
        from ragship.access.principal import current_principal

        job = self.job_queue().job(job_id)
        principal = current_principal()
        if principal is not None and not principal.is_admin and job.submitted_by != principal.name:
            raise JobNotFoundError(
                f"No job {job_id!r} of principal {principal.name!r}; check the id /index/submit gave."
            )
        return job


def check_submission(documents: dict[str, bytes]) -> str:
    """The submitting principal's name ("" outside a guarded service).

    :raises PermissionDeniedError: when a document is marked for a group the caller is not in.
    """
    from ragship.access.marks import declared_groups
    from ragship.access.principal import current_principal
    from ragship.settings import get_settings

    principal = current_principal()
    if principal is None:
        return ""
    if not principal.is_admin:
        rules = get_settings().access.rules
        try:
            for source, content in documents.items():
                principal.require_groups(declared_groups(source, content, rules), source)
            with _submission_cap().request(principal.name):
                pass
        except (PermissionDeniedError, RateLimitedError) as e:
            # refused here, past the access guard: counted and logged like the guard's refusals
            reason = "submission_cap" if isinstance(e, RateLimitedError) else e.reason
            record_refusal(reason, method="POST", route="/index/submit", status=e.http_status, principal=principal.name)
            raise
    return principal.name


@functools.cache
def _submission_cap() -> PrincipalLimits:
    """Index submissions per principal and hour (``serving.index_submissions_per_hour``), in this process."""
    from ragship.settings import get_settings

    per_hour = get_settings().serving.index_submissions_per_hour
    return PrincipalLimits(per_hour, 0, period_s=3600, what="index submissions per hour")


def serve_index_jobs(service: Any) -> None:
    """Finish a service inheriting :class:`IndexJobs`: status reads by GET, queue gauges on ``/metrics``."""
    service.add_asgi_middleware(GetAsPost, paths=["/index/status"])
    service.add_asgi_middleware(QueueMetrics)
