"""Who may see what, over HTTP: two real `bentoml serve` replicas (embedded store, Elasticsearch) sharing one
keys file and one OIDC provider (a JWKS served on loopback).

For every read route (/ask, /ask_stream, /retrieve) on both stores, an hr principal (API key or JWT) asking
for the finance marker gets none of finance's chunks, snippets, titles or source names, and the marker
appears nowhere in the response bytes. Then credentials (401), scopes (403), limits (429: a rate shared by
both replicas through the queue's Redis, the submission cap), submissions for foreign groups (403), one JSON
log line per refusal with no secret in the log, and a revocation that both replicas honour.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from access_corpus import FINANCE_MARKER, HR_MARKER, RULES, leaks, write_corpus
from cryptography.hazmat.primitives.asymmetric import rsa

from ragship.access.keys import KeysFile
from ragship.assembly import open_indexer
from ragship.local.redis_server import LocalRedis
from ragship.serving.launch import bentoml_serve
from ragship.settings import load_settings
from ragship.spec import default_spec

REPO = Path(__file__).resolve().parents[2]
RAGSHIP = str(Path(sys.executable).parent / "ragship")
ADMIN_KEY = "admin-" + uuid.uuid4().hex
ISSUER, AUDIENCE = "https://idp.example.test", "ragship"
RATE = 120  # per principal, counted in the queue's Redis for both replicas together
SUBMISSIONS = 3  # index submissions per principal and hour
QUESTIONS = (FINANCE_MARKER, f"{FINANCE_MARKER} budget margin ledger payroll", "Q3 margins")
READ_ROUTES = ("/ask", "/ask_stream", "/retrieve")

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Provider:
    """An OIDC provider's signing side: an RSA key pair, its JWKS on loopback, and tokens signed with it."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.jwks_url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def token(
        self, groups: list[str], *, exp_in: int = 300, aud: str = AUDIENCE, key: Any = None, **claims: Any
    ) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": aud, "sub": "jwt-user", "groups": groups, "iat": now, "exp": now + exp_in}
        return jwt.encode({**payload, **claims}, key or self.key, algorithm="RS256", headers={"kid": "k1"})


@dataclass
class Replica:
    name: str
    url: str
    home: Path

    def client(self, credential: str | None, timeout: float = 120) -> httpx.Client:
        headers = {"authorization": f"Bearer {credential}"} if credential else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


@dataclass
class Deployment:
    replicas: list[Replica]
    keys: dict[str, str]
    keys_file: Path
    provider: Provider


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, es_url: str, tiny_cross_encoder: Path) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("access-serving")
    corpus = write_corpus(home)
    keys_file = home / "keys.json"
    ring = KeysFile(keys_file)
    keys = {
        "hr": ring.add("hr-reader", ["hr"], ["query", "feedback"]),
        "finance": ring.add("fin-reader", ["finance"], ["query"]),
        "rater": ring.add("rater", ["hr"], ["feedback"]),
        "indexer": ring.add("hr-indexer", ["hr"], ["index"]),
        "burst": ring.add("burst", ["hr"], ["query"]),
        "temp": ring.add("temp", ["hr"], ["query"]),
        "roamer": ring.add("roamer", ["hr"], ["query"]),
        "capped": ring.add("capped", ["hr"], ["index"]),
    }
    provider = Provider()
    alias = f"test-access-serving-{uuid.uuid4().hex[:8]}"
    broker = LocalRedis(load_settings().local_redis, home=home)
    base_env = {
        **os.environ,
        "RAGSHIP_SERVING__API_KEY": ADMIN_KEY,
        "RAGSHIP_SERVING__KEYS_FILE": str(keys_file),
        "RAGSHIP_SERVING__KEYS_RELOAD_MS": "200",
        "RAGSHIP_SERVING__RATE_PER_MINUTE": str(RATE),
        "RAGSHIP_SERVING__SHARED_LIMITS": "true",
        "RAGSHIP_SERVING__INDEX_SUBMISSIONS_PER_HOUR": str(SUBMISSIONS),
        "RAGSHIP_AUTH__JWKS_URL": provider.jwks_url,
        "RAGSHIP_AUTH__ISSUER": ISSUER,
        "RAGSHIP_AUTH__AUDIENCE": AUDIENCE,
        "RAGSHIP_ACCESS__RULES": json.dumps(RULES),
        "RAGSHIP_QUEUE__URL": broker.start(port=0),
        "BENTOML_DO_NOT_TRACK": "True",
        "HF_HUB_OFFLINE": "1",
    }
    stores = {
        # the embedded replica also reranks its candidates (a tiny cross-encoder): the ranker only sees
        # what the scoped searches returned
        "embedded": ({}, default_spec(feedback_docs=3, ranker_model=str(tiny_cross_encoder))),
        "elasticsearch": ({"RAGSHIP_STORE": es_url, "RAGSHIP_ES__INDEX": alias}, default_spec(feedback_docs=3)),
    }
    try:
        with contextlib.ExitStack() as stack:
            replicas = [
                _replica(stack, home / name, base_env, extra, spec, corpus) for name, (extra, spec) in stores.items()
            ]
            yield Deployment(replicas, keys, keys_file, provider)
    finally:
        from ragship.stores.elasticsearch import ElasticsearchStore

        broker.remove()
        provider.server.shutdown()
        ElasticsearchStore(es_url, alias).delete_index()


def _replica(
    stack: contextlib.ExitStack, home: Path, env: dict[str, str], extra: dict[str, str], spec: Any, corpus: Path
) -> Replica:
    """Index the corpus into the store and keep a `bentoml serve` of it up until ``stack`` closes."""
    home.mkdir()
    spec_path = spec.save(home / "spec.yaml")
    settings = load_settings(
        home=home,
        store=extra.get("RAGSHIP_STORE"),
        es={"index": extra.get("RAGSHIP_ES__INDEX", "ragship")},
        access={"rules": RULES},
    )
    assert open_indexer(spec, settings=settings).sync([corpus]).ok
    replica_env = {
        **env,
        **extra,
        "RAGSHIP_HOME": str(home),
        "RAGSHIP_SERVING__SPEC": str(spec_path),
        "BENTOML_HOME": str(home / "bentoml"),
    }
    url = stack.enter_context(bentoml_serve("bentos.query:RAG", env=replica_env, log=home / "serve.log", cwd=REPO))
    return Replica(home.name, url, home)


def _call(replica: Replica, credential: str | None, route: str, body: dict[str, Any]) -> httpx.Response:
    with replica.client(credential) as http:
        if route == "/ask_stream":
            with http.stream("POST", route, json=body) as response:
                response.read()  # every streamed line, as the caller receives them
                return response
        return http.post(route, json=body)


def test_an_hr_principal_reads_nothing_of_finance_on_any_route(deployment: Deployment) -> None:
    hr_jwt = deployment.provider.token(["hr"])
    rows = []
    for replica in deployment.replicas:
        for route in READ_ROUTES:
            for who, credential in (("hr key", deployment.keys["hr"]), ("hr jwt", hr_jwt)):
                for question in QUESTIONS:
                    for top_k in (None, 50):  # 50: serving.max_top_k
                        body = {"question": question, **({"top_k": top_k} if top_k else {})}
                        response = _call(replica, credential, route, body)
                        assert response.status_code == 200, (replica.name, route, who, response.text)
                        assert not leaks(response.content), (replica.name, route, who, question, response.text)
                        rows.append((replica.name, route, who, question, top_k))
            hr_answer = _call(replica, deployment.keys["hr"], route, {"question": f"{HR_MARKER} budget"})
            assert HR_MARKER in hr_answer.text.lower(), (replica.name, route)
            # an empty question is refused before any search, and names no document
            empty = _call(replica, deployment.keys["hr"], route, {"question": "  "})
            assert empty.status_code == 400 and not leaks(empty.content)
            # admins (the shared key) and finance readers do get finance's chunks
            for credential in (ADMIN_KEY, deployment.keys["finance"]):
                seen = _call(replica, credential, route, {"question": f"{FINANCE_MARKER} budget", "top_k": 50})
                assert seen.status_code == 200 and FINANCE_MARKER in seen.text.lower(), (replica.name, route)
    assert len(rows) == 2 * 3 * 2 * 3 * 2


def _chat(replica: Replica, credential: str, question: str, stream: bool) -> httpx.Response:
    """A two-turn conversation on /v1/chat/completions, read to its last byte (streamed: every SSE chunk)."""
    body = {
        "model": "ragship",
        "stream": stream,
        "messages": [
            {"role": "user", "content": "What does the budget say?"},
            {"role": "assistant", "content": "Which budget?"},
            {"role": "user", "content": question},
        ],
    }
    with replica.client(credential) as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        response.read()
        return response


async def _mcp_calls(url: str, credential: str, question: str) -> bytes:
    """Both MCP tools through the official client; everything they returned, as JSON bytes."""
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {credential}"}, timeout=120) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        search = await session.call_tool("search", {"question": question, "top_k": 50})
        ask = await session.call_tool("ask", {"question": question})
    return json.dumps([search.model_dump(mode="json"), ask.model_dump(mode="json")]).encode()


def test_chat_and_mcp_read_only_what_the_principal_may(deployment: Deployment) -> None:
    import asyncio

    question = f"{FINANCE_MARKER} budget margin ledger payroll"
    for replica in deployment.replicas:
        for who, credential in (("hr key", deployment.keys["hr"]), ("hr jwt", deployment.provider.token(["hr"]))):
            for stream in (False, True):
                response = _chat(replica, credential, question, stream)
                assert response.status_code == 200, (replica.name, who, stream, response.text)
                assert not leaks(response.content), (replica.name, who, stream, response.text)
            tools = asyncio.run(_mcp_calls(replica.url, credential, question))
            assert not leaks(tools), (replica.name, who, tools)
        # the same questions do reach finance's chunks for an admin, through both protocols
        assert FINANCE_MARKER in _chat(replica, ADMIN_KEY, question, stream=False).text.lower()
        assert FINANCE_MARKER in asyncio.run(_mcp_calls(replica.url, ADMIN_KEY, question)).decode().lower()
        # without credentials both protocols refuse, in their own words
        with replica.client(None) as http:
            refused = http.post("/v1/chat/completions", json={"model": "ragship", "messages": []})
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"


def test_credentials_and_scopes_are_checked_on_every_replica(deployment: Deployment) -> None:
    p = deployment.provider
    for replica in deployment.replicas:
        body = {"question": "budget"}
        cases = {
            "none": (None, 401, "No credentials"),
            "wrong shared key": ("not-the-key", 401, "wrong"),
            "forged keys-file key": ("rs_000000000000_" + "x" * 43, 401, "unknown or revoked"),
            "tampered key": (deployment.keys["hr"][:-3] + "abc", 401, "unknown or revoked"),
            "expired jwt": (p.token(["hr"], exp_in=-120), 401, "expired"),
            "jwt signed by another key": (p.token(["hr"], key=p.stranger), 401, "Signature verification failed"),
            "jwt for another audience": (p.token(["hr"], aud="someone-else"), 401, "audience"),
            "no query scope": (deployment.keys["rater"], 403, "'query' scope"),
        }
        for case, (credential, status, words) in cases.items():
            response = _call(replica, credential, "/retrieve", body)
            assert response.status_code == status, (replica.name, case, response.text)
            assert words.lower() in response.json()["error"].lower(), (replica.name, case, response.text)
            if credential:
                assert credential not in response.text
        with replica.client(deployment.keys["hr"]) as http:
            assert http.post("/index/submit", json={"documents": [{"source": "a.md", "text": "x"}]}).status_code == 403
            # the old header still carries keys; probes and the page stay open
            assert httpx.post(f"{replica.url}/retrieve", json=body, headers={"x-api-key": ADMIN_KEY}).status_code == 200
            assert httpx.get(f"{replica.url}/healthz").status_code == 200
            metrics = httpx.get(f"{replica.url}/metrics").text
        for reason in ("no_credentials", "bad_credentials", "scope"):
            assert f'ragship_auth_refusals_total{{reason="{reason}"}}' in metrics, reason
        assert "hr-reader" not in metrics  # no per-principal label


def test_submissions_only_for_the_submitters_groups(deployment: Deployment) -> None:
    replica = deployment.replicas[0]
    with replica.client(deployment.keys["indexer"]) as http:
        foreign = http.post(
            "/index/submit",
            json={"documents": [{"source": "leak.md", "text": "---\naccess: [finance]\n---\n# x\n\ny"}]},
        )
        assert foreign.status_code == 403 and "finance" in foreign.json()["error"]
        by_rule = http.post(
            "/index/submit", json={"documents": [{"source": "/x/reports/finance/q4.md", "text": "# Q4\n\nz"}]}
        )
        assert by_rule.status_code == 403
        own = http.post(
            "/index/submit", json={"documents": [{"source": "hr/new.md", "text": "---\naccess: [hr]\n---\n# N\n\nz"}]}
        )
        assert own.status_code == 202, own.text
        status = http.get("/index/status", params={"job_id": own.json()["job_id"]})
        assert status.status_code == 200 and status.json()["submitted_by"] == "hr-indexer", status.text
        assert http.post("/retrieve", json={"question": "budget"}).status_code == 403  # index scope only


def test_feedback_records_the_principals_name_never_its_key(deployment: Deployment) -> None:
    from mlflow import MlflowClient

    replica = deployment.replicas[0]
    with replica.client(deployment.keys["rater"]) as http:
        response = http.post("/feedback", json={"rating": "up", "question": "budget", "comment": "fine"})
    assert response.status_code == 200, response.text
    run = MlflowClient(tracking_uri=f"sqlite:///{replica.home / 'mlflow.db'}").get_run(response.json()["run_id"])
    assert run.data.tags["ragship.principal"] == "rater"
    assert deployment.keys["rater"] not in json.dumps(run.data.tags)


def test_over_the_rate_gets_429_with_retry_after_then_succeeds(deployment: Deployment) -> None:
    replica = deployment.replicas[1]
    with replica.client(deployment.keys["burst"]) as http:
        start, statuses = time.monotonic(), list[int]()
        while len(statuses) < 2 * RATE and 429 not in statuses:  # the bucket refills while we send
            statuses.append(http.post("/retrieve", json={"question": ""}).status_code)
        refill = (time.monotonic() - start) * RATE / 60
        assert statuses[:RATE].count(429) == 0 and statuses[-1] == 429, statuses
        assert len(statuses) - 1 <= RATE + refill + 1, (len(statuses), refill)
        refused = http.post("/retrieve", json={"question": "budget"})
        assert refused.status_code == 429
        wait = int(refused.headers["retry-after"])
        assert 1 <= wait <= 2
        time.sleep(wait + 0.2)
        assert http.post("/retrieve", json={"question": "budget"}).status_code == 200


def test_a_revoked_key_is_refused_by_every_replica(deployment: Deployment, cli: Any) -> None:
    temp = deployment.keys["temp"]
    for replica in deployment.replicas:
        assert _call(replica, temp, "/retrieve", {"question": "budget"}).status_code == 200
    revoked = cli("keys", "revoke", "temp", "--keys-file", str(deployment.keys_file))
    assert revoked.returncode == 0, revoked.stderr
    listed = cli("keys", "list", "--json", "--keys-file", str(deployment.keys_file))
    assert "temp" not in [k["name"] for k in json.loads(listed.stdout)["keys"]]
    time.sleep(0.5)  # keys_reload_ms is 200
    for replica in deployment.replicas:
        for _ in range(3):
            assert _call(replica, temp, "/retrieve", {"question": "budget"}).status_code == 401
        assert _call(replica, deployment.keys["hr"], "/retrieve", {"question": "budget"}).status_code == 200


def _log_mark(replica: Replica) -> int:
    return (replica.home / "serve.log").stat().st_size


def _refusals(replica: Replica, since: int, expected: int) -> list[dict[str, Any]]:
    """The refusal lines the replica logged after byte ``since``, once ``expected`` of them are there."""
    deadline = time.monotonic() + 5
    while True:
        with (replica.home / "serve.log").open("rb") as log:
            log.seek(since)
            lines = [json.loads(line) for line in log.read().splitlines() if line.startswith(b'{"ts":')]
        found = [line for line in lines if line.get("event") == "refusal"]
        if len(found) >= expected or time.monotonic() > deadline:
            return found


def _submission(name: str) -> dict[str, Any]:
    return {"documents": [{"source": f"hr/{name}.md", "text": "---\naccess: [hr]\n---\n# N\n\nz"}]}


def test_the_submission_cap_answers_429_for_that_principal_only(deployment: Deployment) -> None:
    replica = deployment.replicas[0]
    mark = _log_mark(replica)
    with replica.client(deployment.keys["capped"]) as http:
        accepted = [http.post("/index/submit", json=_submission(f"capped-{i}")).status_code for i in range(SUBMISSIONS)]
        over = http.post("/index/submit", json=_submission("capped-over"))
    assert accepted == [202] * SUBMISSIONS
    assert over.status_code == 429 and "index submissions per hour" in over.json()["error"], over.text
    assert 60 < int(over.headers["retry-after"]) <= 3600 // SUBMISSIONS  # one submission back per 20 min
    # another principal, and the admin, still submit
    for credential in (deployment.keys["indexer"], ADMIN_KEY):
        with replica.client(credential) as http:
            assert http.post("/index/submit", json=_submission("other")).status_code == 202
    lines = _refusals(replica, mark, 1)
    assert [(r["reason"], r["route"], r["status"], r["principal"]) for r in lines] == [
        ("submission_cap", "/index/submit", 429, "capped")
    ]


def test_the_rate_holds_across_replicas_through_redis(deployment: Deployment) -> None:
    a, b = deployment.replicas
    marks = [_log_mark(a), _log_mark(b)]
    key = deployment.keys["roamer"]
    start = time.monotonic()
    with a.client(key) as on_a, b.client(key) as on_b:
        first = [on_a.post("/retrieve", json={"question": ""}).status_code for _ in range(RATE // 2)]
        second: list[int] = []
        while len(second) < RATE and 429 not in second:
            second.append(on_b.post("/retrieve", json={"question": ""}).status_code)
        refill = (time.monotonic() - start) * RATE / 60
        assert 429 not in first and second[-1] == 429, (first, second)
        # b alone admits RATE; it refused once what a spent (plus the refill meanwhile) left nothing
        assert len(second) - 1 <= RATE // 2 + refill + 1 < RATE, (len(second), refill)
        refused = [on.post("/retrieve", json={"question": "budget"}) for on in (on_b, on_a)]
        assert [r.status_code for r in refused] == [429, 429], [r.text for r in refused]
        wait = max(int(r.headers["retry-after"]) for r in refused)
        assert 1 <= wait <= 2
        time.sleep(wait + 0.2)
        assert on_a.post("/retrieve", json={"question": "budget"}).status_code == 200
    # one log line per 429, on the replica that answered it
    for replica, mark, count in ((a, marks[0], 1), (b, marks[1], 2)):
        lines = _refusals(replica, mark, count)
        assert [(r["reason"], r["route"], r["status"], r["principal"]) for r in lines] == [
            ("rate", "/retrieve", 429, "roamer")
        ] * count, (replica.name, lines)


def test_admins_are_not_rate_limited(deployment: Deployment) -> None:
    with deployment.replicas[1].client(ADMIN_KEY) as http:
        statuses = {http.post("/retrieve", json={"question": ""}).status_code for _ in range(RATE + 5)}
    assert statuses == {400}  # the empty question's own answer: never 429


def test_each_refusal_is_one_json_log_line_with_no_secret(deployment: Deployment) -> None:
    replica, p, keys = deployment.replicas[0], deployment.provider, deployment.keys
    tampered, expired, foreign = keys["hr"][:-3] + "abc", p.token(["hr"], exp_in=-120), p.token(["hr"], key=p.stranger)
    submit_finance = {"documents": [{"source": "x.md", "text": "---\naccess: [finance]\n---\n# x\n\ny"}]}
    cases = [
        (None, "/retrieve", {"question": "budget"}, 401, "no_credentials", None),
        (tampered, "/retrieve", {"question": "budget"}, 401, "bad_credentials", None),
        (expired, "/ask", {"question": "budget"}, 401, "bad_credentials", None),
        (foreign, "/ask_stream", {"question": "budget"}, 401, "bad_credentials", None),
        (keys["rater"], "/retrieve", {"question": "budget"}, 403, "scope", "rater"),
        (ADMIN_KEY + "x", "/retrieve", {"question": "budget"}, 401, "bad_credentials", None),
        (keys["indexer"], "/index/submit", submit_finance, 403, "scope", "hr-indexer"),
    ]  # fmt: skip
    mark = _log_mark(replica)
    for credential, route, body, status, _, _ in cases:
        assert _call(replica, credential, route, body).status_code == status, (route, status)
    lines = _refusals(replica, mark, len(cases))
    assert [(r["reason"], r["route"], r["status"], r["principal"]) for r in lines] == [
        (reason, route, status, who) for _, route, _, status, reason, who in cases
    ]
    # no key, token, key secret or stored hash anywhere in either replica's log
    stored = json.loads(deployment.keys_file.read_text())
    hashes = [v for entry in stored["keys"].values() for k, v in entry.items() if k in ("hash", "salt")]
    secrets = [*keys.values(), *(k.rsplit("_", 1)[-1] for k in keys.values()), ADMIN_KEY, tampered, expired, foreign]
    for each in deployment.replicas:
        log = (each.home / "serve.log").read_text(errors="replace")
        assert hashes and not [s for s in [*secrets, *hashes] if s in log], each.name
