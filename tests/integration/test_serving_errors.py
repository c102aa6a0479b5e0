"""Errors over real HTTP: a real `bentoml serve` of a service whose routes fail on purpose."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ragship.serving.launch import bentoml_serve

HERE = Path(__file__).resolve().parent

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    home = tmp_path_factory.mktemp("faulty")
    env = {**os.environ, "BENTOML_HOME": str(home / "bentoml"), "BENTOML_DO_NOT_TRACK": "True"}
    log = home / "serve.log"
    with (
        bentoml_serve("faulty_service:Faulty", env=env, log=log, cwd=HERE, timeout_s=180) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        yield http, log


def test_a_library_bug_is_a_500_naming_only_a_request_id_that_the_log_holds(
    served: tuple[httpx.Client, Path],
) -> None:
    http, log = served
    response = http.post("/bug", json={})
    assert response.status_code == 500
    assert "secret" not in response.text and "/srv" not in response.text
    match = re.fullmatch(r"internal error; see the server log \(request id ([0-9a-f]{16})\)", response.json()["error"])
    assert match, response.text
    rid = match.group(1)
    assert response.headers.get("x-bentoml-request-id") == rid  # the id the caller can quote
    deadline = time.monotonic() + 10
    while f"request id {rid}" not in (text := log.read_text(errors="replace")) and time.monotonic() < deadline:
        time.sleep(0.2)
    logged = text[text.index(f"request id {rid}") :]
    assert "Traceback" in logged and "ValueError: secret internals" in logged


def test_a_domain_error_keeps_its_status_message_and_retry_after(served: tuple[httpx.Client, Path]) -> None:
    http, _ = served
    response = http.post("/outage", json={})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"].startswith("Cannot reach Elasticsearch at http://es:9200")
    assert "document store is unavailable" in response.json()["error"]
    assert http.post("/fine", json={}).json() == {"ok": True}
