"""The BentoML services end to end: a real `bentoml serve` (RAG + Embedder + Generator) over real Elasticsearch.

The served spec answers with a tiny random-weight causal LM through the Generator service, so the
streaming path is the real one. Tests run in file order; the Elasticsearch outage test comes last.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from page_helpers import DESKTOP, PHONE, PNG_MAGIC, assert_on_screen, chromium_path, page_app_without_auth

from ragship.assembly import open_indexer
from ragship.local.redis_server import LocalRedis
from ragship.serving.launch import bentoml_serve
from ragship.settings import load_settings
from ragship.spec import default_spec

REPO = Path(__file__).resolve().parents[2]
RAGSHIP = str(Path(sys.executable).parent / "ragship")
API_KEY = "test-key-" + uuid.uuid4().hex[:8]
QUESTION = "How do I run the tests?"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Served:
    url: str
    home: Path
    env: dict[str, str]
    log: Path

    def client(self, key: str | None = API_KEY, timeout: float = 120) -> httpx.Client:
        headers = {"x-api-key": key} if key is not None else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, es_url: str, tiny_causal_lm: Path) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serving-home")
    alias = f"test-serving-{uuid.uuid4().hex[:8]}"
    spec = default_spec(generator="local", local_model=str(tiny_causal_lm))
    spec.query["components"]["llm"]["init_parameters"]["generation_kwargs"]["max_new_tokens"] = 24
    spec_path = spec.save(home / "spec.yaml")
    env = {
        **os.environ,
        "RAGSHIP_HOME": str(home),
        "RAGSHIP_STORE": es_url,
        "RAGSHIP_ES__INDEX": alias,
        "RAGSHIP_SERVING__SPEC": str(spec_path),
        "RAGSHIP_SERVING__API_KEY": API_KEY,
        "RAGSHIP_SERVING__MAX_REQUEST_BYTES": str(1024 * 1024),
        # Queries are embedded by the Embedder service here (the GPU deployment's path); the bento tests
        # serve the CPU default, where the API process embeds them itself.
        "RAGSHIP_SERVING__QUERY_MODELS": "service",
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "HF_HUB_OFFLINE": "1",
    }
    settings = load_settings(home=home, store=es_url, es={"index": alias})
    report = open_indexer(spec, settings=settings).index([REPO / "docs"])
    assert report.ok and report.files_indexed > 5
    # The queue's broker: /index/submit puts jobs on it; a `ragship worker` indexes them.
    broker = LocalRedis(settings.local_redis, home=home)
    env["RAGSHIP_QUEUE__URL"] = broker.start(port=0)
    log = home / "serve.log"
    try:
        with bentoml_serve("bentos.query:RAG", env=env, log=log, cwd=REPO, timeout_s=240) as url:
            yield Served(url=url, home=home, env=env, log=log)
    finally:
        from ragship.stores.elasticsearch import ElasticsearchStore

        broker.remove()
        ElasticsearchStore(es_url, alias).delete_index()


def test_indexing_job_is_queued_then_its_document_is_cited(served: Served, tmp_path: Path, cli) -> None:
    word = "zqx" + uuid.uuid4().hex[:6]
    doc = {
        "source": "notes/release-rules.md",
        "text": f"# Release rules\n\nEvery release needs approval from the {word} committee before it ships.",
    }
    worker = subprocess.Popen(
        [RAGSHIP, "worker"],
        env={**served.env, "RAGSHIP_WORKER__METRICS_PORT": "0"},
        stdout=(served.home / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with served.client() as http:
            submitted = http.post("/index/submit", json={"documents": [doc]})
            assert submitted.status_code == 202, submitted.text
            job_id = submitted.json()["job_id"]
            deadline = time.monotonic() + 240
            while (status := http.get("/index/status", params={"job_id": job_id}).json())["status"] not in {
                "done",
                "failed",
                "dead_lettered",
            }:
                assert time.monotonic() < deadline, status
                time.sleep(0.5)
            assert status["status"] == "done", status
            assert status["counts"]["added"] == 1 and status["counts"]["chunks_written"] == 1
            assert status["failures"] == []
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=120)
    with served.client() as http:
        answer = http.post("/ask", json={"question": f"Who approves a release? {word}"}).json()
        assert answer["sources"][0]["source"] == "notes/release-rules.md"
        assert word in answer["sources"][0]["snippet"]
        assert answer["sources"][0]["citation"] == 1
        retrieved = http.post("/retrieve", json={"question": word, "top_k": 2}).json()["documents"]
        assert retrieved[0]["source"] == "notes/release-rules.md" and len(retrieved) == 2

    # Uploads and syncs share one indexing path and one manifest: syncing the same file writes nothing.
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "release-rules.md").write_text(doc["text"])
    synced = cli("sync", "notes", "--served", "--json", cwd=tmp_path, env=served.env)
    assert synced.returncode == 0, synced.stderr
    report = json.loads(synced.stdout)
    assert (report["unchanged"], report["added"], report["updated"], report["chunks_written"]) == (1, 0, 0, 0)


def test_a_missing_or_wrong_api_key_is_rejected(served: Served) -> None:
    for key in (None, "wrong-key"):
        with served.client(key=key) as http:
            response = http.post("/ask", json={"question": QUESTION})
            assert response.status_code == 401
            assert "x-api-key" in response.json()["error"]
            # the probes and the page stay reachable for orchestrators and browsers
            assert http.get("/healthz").status_code == 200
            assert http.get("/").status_code == 200
    with served.client() as http:
        assert http.post("/ask", json={"question": QUESTION}).status_code == 200


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("/ask", {"question": "   "}, "question"),
        ("/ask", {"question": QUESTION, "top_k": 0}, "top_k"),
        ("/ask", {"top_k": 3}, "question"),
        ("/retrieve", {"question": "x" * 5000}, "question"),
        ("/feedback", {"rating": "great", "question": QUESTION}, "rating"),
        ("/index/submit", {"documents": [{"source": "virus.exe", "text": "x"}]}, "documents.0.source"),
        ("/index/submit", {"documents": [{"source": "a.pdf", "content_base64": "not base64!"}]}, "documents.0"),
        ("/index/submit", {"documents": []}, "documents"),
    ],
)
def test_invalid_requests_get_400_naming_the_field(
    served: Served, route: str, body: dict[str, Any], field: str
) -> None:
    with served.client() as http:
        response = http.post(route, json=body)
    assert response.status_code == 400, response.text
    locations = [".".join(str(p) for p in d["loc"]) for d in response.json()["detail"]]
    assert field in locations


def test_oversize_requests_get_413_announced_or_streamed(served: Served) -> None:
    big = json.dumps({"question": "x" * (2 * 1024 * 1024)}).encode()
    with served.client() as http:
        announced = http.post("/ask", content=big, headers={"content-type": "application/json"})
        streamed = http.post(
            "/ask",
            content=iter([big[i : i + 65536] for i in range(0, len(big), 65536)]),
            headers={"content-type": "application/json"},
        )
    for response in (announced, streamed):
        assert response.status_code == 413
        assert "RAGSHIP_SERVING__MAX_REQUEST_BYTES" in response.json()["error"]


def test_32_concurrent_requests_all_succeed(served: Served) -> None:
    questions = [f"{QUESTION} ({i})" if i % 2 else "What does the embedded store keep on disk?" for i in range(32)]

    def ask(question: str) -> httpx.Response:
        with served.client() as http:
            return http.post("/ask" if len(question) % 3 else "/retrieve", json={"question": question})

    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(ask, questions))
    assert [r.status_code for r in responses] == [200] * 32
    for response in responses:
        body = response.json()
        assert body.get("sources") or body.get("documents")


def test_the_streaming_endpoint_streams_tokens_before_the_answer(served: Served) -> None:
    arrivals: list[tuple[float, dict[str, Any]]] = []
    with served.client() as http, http.stream("POST", "/ask_stream", json={"question": QUESTION}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        for line in response.iter_lines():
            if line:
                arrivals.append((time.monotonic(), json.loads(line)))
    tokens = [event["token"] for _, event in arrivals if "token" in event]
    final = arrivals[-1][1]
    assert len(tokens) >= 2, arrivals
    assert "".join(tokens).strip() == final["answer"].strip()
    assert "docs/testing.md" in [s["source"] for s in final["sources"]]
    assert arrivals[0][0] < arrivals[-1][0]


def test_openai_chat_streams_the_llm_and_its_max_tokens_reach_the_generator(served: Served) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key=API_KEY, max_retries=0, timeout=120)

    def words(**limits: Any) -> list[str]:
        stream = client.chat.completions.create(
            model="ragship", messages=[{"role": "user", "content": QUESTION}], stream=True, **limits
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        # The LLM's reply, without the sources list after it (serving.chat_sources_in_content). The tiny model's
        # tokenizer is word-level: a word is a token (the streamer may send several in one piece).
        return text.split("\n\nSources:")[0].split()

    # The spec lets the tiny model write 24 tokens; the request's max_tokens becomes its max_new_tokens.
    free, capped = words(), words(max_tokens=2, temperature=0)
    assert len(capped) <= 2 < len(free), (capped, free)


def _assert_page_layout(page: Any, shot: Path) -> None:
    """What the user must see once an answer is shown, at the current viewport; saves a screenshot."""
    page.screenshot(path=shot, full_page=True)
    why = f"{page.viewport_size['width']}px wide, screenshot {shot}"
    assert shot.read_bytes().startswith(PNG_MAGIC), why
    for selector in ("#answer", "#sources li", "#key-label", "#key", "#question", "#ask"):
        assert_on_screen(page, selector, why)
    for button in ("#rate-up", "#rate-down"):
        # icons and text labels, no emoji font needed
        assert_on_screen(page, button, why, min_width=20)
        assert page.locator(button).inner_text().strip(), f"{button} has no visible label ({why})"
        assert_on_screen(page, f"{button} svg", why)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px ({why})"


def _ask_in_page(page: Any, question: str) -> None:
    page.fill("#question", question)
    page.click("#ask")
    page.wait_for_selector("#sources li", timeout=60_000)
    page.wait_for_selector("#ask:enabled", timeout=60_000)


def _assert_snippets_read_as_text(served: Served, page: Any) -> None:
    """The sources' snippets show no Markdown marks, although the chunks they quote are Markdown."""
    from ragship.stores.elasticsearch import ElasticsearchStore

    shown = page.locator("#sources li .snippet").all_inner_texts()
    assert shown and all(text.strip() for text in shown)
    for text in shown:
        assert "```" not in text and "## " not in text and not text.startswith("#"), text
    store = ElasticsearchStore(served.env["RAGSHIP_STORE"], served.env["RAGSHIP_ES__INDEX"])
    testing = store.filter_documents({"field": "meta.source", "operator": "==", "value": "docs/testing.md"})
    headed = [d for d in testing if (d.content or "").lstrip().startswith("#")]
    assert headed, "the docs' chunks of docs/testing.md start with their Markdown heading"
    assert "How to run the tests" in " ".join(shown)  # the heading still names the section, as words


def test_browser_page_asks_shows_citations_and_records_the_rating(served: Served, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=DESKTOP)
            page.goto(served.url)
            page.fill("#key", API_KEY)
            _ask_in_page(page, QUESTION)
            sources = page.locator("#sources li")
            assert sources.count() == 5
            assert "docs/testing.md" in " ".join(sources.all_inner_texts())
            assert page.locator("#sources li#source-1").count() == 1
            _assert_snippets_read_as_text(served, page)
            _assert_page_layout(page, tmp_path / "desktop.png")

            # A phone: the same page, asked again, fits 375 px without sideways scrolling.
            page.set_viewport_size(PHONE)
            page.locator("#sources").evaluate("(list) => list.replaceChildren()")
            _ask_in_page(page, QUESTION)
            _assert_page_layout(page, tmp_path / "phone.png")

            page.fill("#comment", "browser says thanks")
            page.click("#rate-up")
            page.wait_for_selector("text=Thanks, recorded.", timeout=30_000)
        finally:
            browser.close()

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{served.home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ragship-feedback")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "tags.`ragship.rating` = 'up'")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.metrics["rating"] == 1
    assert run.data.tags["mlflow.note.content"] == "browser says thanks"
    assert run.data.tags["ragship.served"].endswith("spec.yaml")
    feedback = client.download_artifacts(run.info.run_id, "feedback.json")
    assert json.loads(Path(feedback).read_text())["question"] == QUESTION


# An answer in the generator's contract: cited prose with inline code, then a fenced command.
SAMPLE_ANSWER = (
    "Run the suite with `make test` [1]. Point `RAGSHIP_TEST_ES_URL` at "
    "https://elasticsearch.internal.example.com:9200/some/really/long/path/that/never/ends/at/all [2].\n"
    '<img src=x onerror="window.pwned = 1"> <script>window.pwned = 2</script> is text [3].'
    "\n\n```sh\nmake test PYTEST_ADDOPTS='-k browser --maxfail=1 -p no:cacheprovider --timeout=900 -vv'\n```\n[1]"
)


def test_browser_page_renders_markdown_answers_safely_and_hides_the_unused_key_field(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with page_app_without_auth() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=PHONE)
            with page.expect_response("**/ui/config.json") as config:
                page.goto(url)
            assert not config.value.json().get("auth")
            page.wait_for_load_state("networkidle")
            # No key configured: neither the label nor the field shows.
            assert page.locator("#key-label").bounding_box() is None
            assert page.locator("#key").bounding_box() is None

            page.evaluate("(text) => renderAnswer(text)", SAMPLE_ANSWER)
            page.evaluate(
                """() => {
                    renderSources([{citation: 1, cited: true, source: "docs/testing.md", title: null,
                                    snippet: "`RAGSHIP_SERVING__MAX_REQUEST_BYTES`" + "_VERY_LONG".repeat(30)}]);
                    document.getElementById("result").hidden = false;
                }"""
            )
            answer = page.locator("#answer")
            assert answer.locator("p").count() == 2  # the prose, and the citation after the fence
            block = answer.locator("pre > code")
            assert block.count() == 1
            assert block.inner_text().startswith("make test PYTEST_ADDOPTS=")
            assert block.get_attribute("class") == "language-sh"
            assert answer.locator("p code").all_inner_texts() == ["make test", "RAGSHIP_TEST_ES_URL"]
            cites = answer.locator("a.cite")
            assert [cites.nth(i).get_attribute("href") for i in range(cites.count())] == [
                "#source-1",
                "#source-2",
                "#source-3",
                "#source-1",
            ]
            assert cites.all_inner_texts() == ["[1]", "[2]", "[3]", "[1]"]
            # Markup in an answer is shown as text, never run.
            assert answer.locator("img, script").count() == 0
            assert '<img src=x onerror="window.pwned = 1">' in answer.inner_text()
            page.wait_for_timeout(100)
            assert page.evaluate("window.pwned") is None

            # On a phone, long tokens wrap and the code block scrolls inside its box.
            shot = tmp_path / "phone-markdown.png"
            page.screenshot(path=shot, full_page=True)
            assert shot.read_bytes().startswith(PNG_MAGIC), shot
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"the page scrolls sideways by {overflow}px, see {shot}"
            pre = answer.locator("pre")
            assert pre.evaluate("(e) => e.scrollWidth > e.clientWidth"), f"the code block does not scroll, see {shot}"
            for selector in ("#answer", "#answer pre", "#answer a.cite", "#sources li", "#question", "#rate-up"):
                assert_on_screen(page, selector, f"screenshot {shot}")

            # Streaming re-renders the text so far: an unterminated fence is already code.
            page.evaluate("(text) => renderAnswer(text)", "Run it [1]:\n\n```\nmake te")
            assert block.inner_text() == "make te"
            assert block.get_attribute("class") is None
            assert answer.locator("p").all_inner_texts() == ["Run it [1]:"]
        finally:
            browser.close()


def test_store_outage_gives_503_and_the_service_recovers_without_restart(served: Served, es_node: Any) -> None:
    if es_node is None:
        pytest.skip("RAGSHIP_TEST_ES_URL points at an external node this test must not stop")
    url = es_node.status().url
    port = int(url.rsplit(":", 1)[1])
    es_node.stop()
    try:
        with served.client(timeout=90) as http:
            down = http.post("/ask", json={"question": QUESTION})
            assert down.status_code == 503, down.text
            assert "document store is unavailable" in down.json()["error"]
            streamed = http.post("/ask_stream", json={"question": QUESTION})
            assert streamed.status_code == 503
            assert http.get("/readyz").status_code == 503
            assert http.get("/healthz").status_code == 200
    finally:
        es_node.start(port=port)
    with served.client() as http:
        deadline = time.monotonic() + 120
        while (response := http.post("/ask", json={"question": QUESTION})).status_code != 200:
            assert time.monotonic() < deadline, response.text
            time.sleep(1)
        assert "docs/testing.md" in [s["source"] for s in response.json()["sources"]]
        assert http.get("/readyz").status_code == 200
