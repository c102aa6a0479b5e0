"""Errors at the HTTP edge: domain errors keep their status and message, anything else is a bare, logged 500."""

from __future__ import annotations

import inspect
import json
import logging
import re

import pytest
from pydantic import BaseModel

from ragship import errors
from ragship.errors import (
    AuthenticationError,
    ConfigError,
    ConversionError,
    InvalidRequestError,
    ModelError,
    ModelServiceUnavailableError,
    PermissionDeniedError,
    QueueError,
    RagshipError,
    RateLimitedError,
    SpecError,
    StoreError,
    StoreUnavailableError,
    TrackingError,
)
from ragship.serving.http import http_errors, public_error

pytestmark = pytest.mark.unit

DOMAIN_ERRORS = [
    c
    for _, c in inspect.getmembers(errors, inspect.isclass)
    if issubclass(c, RagshipError) and c.__module__ == errors.__name__
]
STATUS = {
    InvalidRequestError: 400,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    RateLimitedError: 429,
    ConversionError: 422,
    StoreUnavailableError: 503,
    ModelServiceUnavailableError: 503,
    TrackingError: 503,
    QueueError: 503,
    RagshipError: 500,
    ConfigError: 500,
    SpecError: 500,
    StoreError: 500,
    ModelError: 500,
}


def _raising(error: BaseException) -> dict[str, object]:
    """What an API method raising ``error`` answers: status, body, headers."""

    @http_errors
    def method() -> str:
        raise error

    response = method()
    assert not isinstance(response, str)
    return {"status": response.status_code, "body": json.loads(response.body), "headers": response.headers}


def test_every_domain_error_declares_its_status_and_a_one_line_fix() -> None:
    assert set(DOMAIN_ERRORS) == set(STATUS), "a new error class needs its status in STATUS"
    for cls in DOMAIN_ERRORS:
        assert 400 <= cls.http_status < 600 and "\n" not in cls.fix
        assert (cls.retry_after_s is not None) == (cls.http_status in (429, 503)), cls
        assert str(cls("what went wrong; how to fix it.")) == "what went wrong; how to fix it."  # call sites unchanged


@pytest.mark.parametrize(("cls", "status"), STATUS.items(), ids=lambda v: getattr(v, "__name__", str(v)))
def test_each_domain_error_answers_its_status_with_its_message(cls: type[RagshipError], status: int) -> None:
    answer = _raising(cls("Elasticsearch at http://es:9200 is unreachable; start it."))
    assert answer["status"] == status
    error = answer["body"]["error"]  # type: ignore[index]
    assert error.startswith("Elasticsearch at http://es:9200 is unreachable; start it.") and cls.fix in error
    headers = answer["headers"]
    assert headers.get("retry-after") == (str(cls.retry_after_s) if cls.retry_after_s else None)  # type: ignore[attr-defined]


def test_outages_keep_the_wording_callers_and_tests_rely_on() -> None:
    answer = _raising(StoreUnavailableError("Cannot reach Elasticsearch at http://es:9200 (ConnectionError)."))
    assert "document store is unavailable" in answer["body"]["error"]  # type: ignore[index]
    assert answer["headers"]["retry-after"] == "5"  # type: ignore[index]


def test_bad_input_is_still_a_value_error_for_library_callers() -> None:
    assert issubclass(InvalidRequestError, ValueError)
    assert _raising(InvalidRequestError("The question is empty."))["body"] == {"error": "The question is empty."}


class _Strict(BaseModel):
    n: int


def _library_validation_error() -> Exception:
    try:
        _Strict.model_validate({"n": "secret internals"})
    except Exception as e:
        return e
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    "bug",
    [
        ValueError("secret internals: /srv/keys/token"),
        KeyError("secret internals"),
        ConnectionError("secret internals at 10.0.0.7"),
        _library_validation_error(),  # a library bug, not a caller's input: BentoML validated that already
    ],
    ids=["ValueError", "KeyError", "ConnectionError", "pydantic.ValidationError"],
)
def test_library_bugs_are_a_bare_500_and_a_logged_traceback(bug: Exception, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="ragship.serving"):
        answer = _raising(bug)
    assert answer["status"] == 500
    error = answer["body"]["error"]  # type: ignore[index]
    assert "secret" not in error and "internals" not in error
    match = re.fullmatch(r"internal error; see the server log \(request id ([0-9a-f]{16})\)", error)
    assert match, error
    [record] = caplog.records
    assert match.group(1) in record.getMessage()  # the caller's id finds the log line
    assert record.exc_info is not None and record.exc_info[1] is bug  # with its traceback


def test_server_side_domain_errors_are_logged_with_a_traceback_and_an_id(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ragship.serving"):
        status, message = public_error(SpecError("query: needs exactly one AnswerBuilder component, found 0."))
        public_error(StoreUnavailableError("Cannot reach Elasticsearch."))
        public_error(InvalidRequestError("The question is empty."))
    assert status == 500 and message.startswith("query: needs exactly one AnswerBuilder")
    rid = re.search(r"request id ([0-9a-f]{16})", message)
    assert rid and rid.group(1) in caplog.records[0].getMessage() and caplog.records[0].exc_info
    # outages and refused input are expected: logged, but without a traceback
    assert [(r.levelno, r.exc_info) for r in caplog.records[1:]] == [(logging.WARNING, None), (logging.INFO, None)]
