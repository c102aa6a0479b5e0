"""`ragship es` lifecycle and the credentials path, on a node with security switched on."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragship.local.es_node import LocalElasticsearch
from ragship.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery-42"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def secured(cli) -> Iterator[tuple[str, str]]:
    name = f"pytest-secure-{os.getpid()}"
    started = cli(
        "es", "start", "--name", name, "--port", "0", "--password-env", "TEST_ES_PW", env={"TEST_ES_PW": PASSWORD}
    )
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip().splitlines()[-1]
    try:
        yield name, url
    finally:
        LocalElasticsearch(load_settings().local_es, name=name).remove()


def _creds(password: str) -> dict[str, str]:
    return {"RAGSHIP_ES__USERNAME": "elastic", "RAGSHIP_ES__PASSWORD": password, "RAGSHIP_ES__INDEX": "secured"}


def test_status_and_logs(secured: tuple[str, str], cli) -> None:
    name, url = secured
    status = cli("es", "status", "--name", name, "--json")
    assert status.returncode == 0
    data = json.loads(status.stdout)
    assert data["running"] and data["url"] == url and data["health"] in {"green", "yellow"}
    logs = cli("es", "logs", "--name", name, "-n", "200")
    assert "started" in logs.stdout
    # a second start finds the running node and reports the same URL
    again = cli("es", "start", "--name", name, "--password-env", "TEST_ES_PW", env={"TEST_ES_PW": PASSWORD})
    assert again.stdout.strip().splitlines()[-1] == url


def test_basic_auth_works(secured: tuple[str, str], tmp_path: Path, cli) -> None:
    doc = tmp_path / "auth.md"
    doc.write_text("# Auth\n\nThe secured cluster stores the pelican handbook.\n")
    indexed = cli("index", str(doc), "--store", secured[1], env=_creds(PASSWORD))
    assert indexed.returncode == 0, indexed.stderr
    asked = cli("ask", "pelican handbook", "--store", secured[1], "--json", "--mode", "bm25", env=_creds(PASSWORD))
    assert json.loads(asked.stdout)["sources"][0]["source"].endswith("auth.md")


@pytest.mark.parametrize("env", [_creds("wrong-password-123"), {}])
def test_bad_or_missing_credentials_are_one_clear_line(secured: tuple[str, str], env: dict[str, str], cli) -> None:
    result = cli("ask", "anything", "--store", secured[1], env=env)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "rejected the credentials (HTTP 401)" in message
    assert "wrong-password-123" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_stop_then_clear_error(secured: tuple[str, str], cli) -> None:
    name, url = secured
    stopped = cli("es", "stop", "--name", name)
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    assert cli("es", "status", "--name", name).returncode == 1
    result = cli("ask", "anything", "--store", url, env=_creds(PASSWORD))
    assert result.returncode == 2
    assert f"Cannot reach Elasticsearch at {url}" in " ".join(result.stderr.split())
