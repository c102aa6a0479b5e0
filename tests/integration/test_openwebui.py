"""Open WebUI with ragship as its OpenAI connection, driven in headless Chromium as a user drives it.

Run by `make test-openwebui` only (marker ``openwebui``, deselected by default): Open WebUI lives in its own
virtual environment (.tools/openwebui, PyPI ``open-webui``, about 7.3 GB, installed once by that target),
too heavy for `make test`. A real `bentoml serve` of the extractive default spec over the project's docs,
with an API key, and a real `open-webui serve` on loopback, offline (it downloads nothing), without login.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from page_helpers import DESKTOP, PNG_MAGIC, chromium_path

from ragship.local.process import free_port
from ragship.serving.launch import bentoml_serve, serving
from ragship.spec import default_spec

REPO = Path(__file__).resolve().parents[2]
OPEN_WEBUI = REPO / ".tools/openwebui/bin/open-webui"
API_KEY = "owui-key-" + uuid.uuid4().hex[:8]
QUESTION = "How do I run the tests?"
SCREENSHOT_COPY = Path("/work/notes/screens/openwebui.png")  # for the closing note, when that folder exists
CITATION = re.compile(r"\[\d+\]")

pytestmark = [pytest.mark.openwebui, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def ragship(tmp_path_factory: pytest.TempPathFactory, docs_store: str) -> Iterator[str]:
    """ragship's API over the docs store; its OpenAI base URL (``.../v1``) requires API_KEY."""
    home = tmp_path_factory.mktemp("ragship-home")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RAGSHIP_")},
        "RAGSHIP_HOME": str(home),
        "RAGSHIP_STORE": docs_store,
        "RAGSHIP_SERVING__SPEC": str(default_spec().save(home / "spec.yaml")),
        "RAGSHIP_SERVING__API_KEY": API_KEY,
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "HF_HUB_OFFLINE": "1",
    }
    with bentoml_serve("bentos.query:RAG", env=env, log=home / "serve.log", cwd=REPO, timeout_s=240) as url:
        yield f"{url}/v1"


def openwebui_env(data: Path, base_url: str) -> dict[str, str]:
    """Open WebUI's settings: ragship its only connection; offline, no login, no extra LLM calls."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RAGSHIP_", "OPENAI_"))},
        "DATA_DIR": str(data),
        "WEBUI_SECRET_KEY": uuid.uuid4().hex,  # else it writes .webui_secret_key into the working directory
        "WEBUI_AUTH": "false",
        "OFFLINE_MODE": "true",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "false",
        "DO_NOT_TRACK": "true",
        "SCARF_NO_ANALYTICS": "true",
        "ENABLE_VERSION_UPDATE_CHECK": "false",
        "ENABLE_OLLAMA_API": "false",
        "ENABLE_OPENAI_API": "true",
        "OPENAI_API_BASE_URL": base_url,
        "OPENAI_API_KEY": API_KEY,
        # Its own document RAG would load a sentence-transformers model from the Hugging Face hub at start;
        # ragship does the retrieval, so Open WebUI's is bypassed and its embedding model never loaded.
        "BYPASS_EMBEDDING_AND_RETRIEVAL": "true",
        "RAG_EMBEDDING_MODEL_AUTO_UPDATE": "false",
        "RAG_RERANKING_MODEL_AUTO_UPDATE": "false",
        "WHISPER_MODEL_AUTO_UPDATE": "false",
        # Titles, tags, follow-up suggestions and autocompletion would each send ragship another question.
        "ENABLE_TITLE_GENERATION": "false",
        "ENABLE_TAGS_GENERATION": "false",
        "ENABLE_FOLLOW_UP_GENERATION": "false",
        "ENABLE_AUTOCOMPLETE_GENERATION": "false",
        "ENABLE_WEB_SEARCH": "false",
    }


@pytest.fixture(scope="module")
def openwebui(tmp_path_factory: pytest.TempPathFactory, ragship: str) -> Iterator[str]:
    if not OPEN_WEBUI.exists():
        pytest.fail(f"{OPEN_WEBUI} is missing: run `make test-openwebui`, which installs Open WebUI first")
    data = tmp_path_factory.mktemp("openwebui")
    port = free_port()
    command = [str(OPEN_WEBUI), "serve", "--host", "127.0.0.1", "--port", str(port)]
    env = openwebui_env(data / "data", ragship)
    url = f"http://127.0.0.1:{port}"
    with serving(command, env=env, log=data / "openwebui.log", cwd=data, url=url, timeout_s=420, ready_path="/health"):
        yield url


def test_a_question_typed_in_open_webui_gets_ragships_cited_answer(openwebui: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shot = tmp_path / "openwebui.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=DESKTOP)
            page.set_default_timeout(120_000)
            page.goto(openwebui)
            chat_input = page.locator("#chat-input")
            chat_input.wait_for()
            _dismiss_release_notes(page)

            # With one connection Open WebUI may already have chosen one of ragship's models (its label then
            # reads "Selected model: ..."); otherwise pick `ragship` from the list.
            selector = page.locator("button[aria-haspopup='listbox'][id^='model-selector-']").first
            if re.match("Select a model", selector.get_attribute("aria-label") or "", re.I):
                selector.click()
                page.locator("#model-selector-list").get_by_text("ragship", exact=True).first.click()
            expect(selector).to_have_attribute("aria-label", re.compile(r"Selected model: .*ragship", re.I))
            chat_input.click()
            page.keyboard.type(QUESTION)
            page.keyboard.press("Enter")

            answer = page.locator("#response-content-container").last
            expect(answer).to_contain_text("Sources:", timeout=180_000)
            text = answer.inner_text()
            page.screenshot(path=str(shot), full_page=True)
        except Exception:
            page.screenshot(path=str(tmp_path / "failed.png"), full_page=True)  # what the page showed, to debug
            if SCREENSHOT_COPY.parent.is_dir():
                shutil.copyfile(tmp_path / "failed.png", SCREENSHOT_COPY.with_name("openwebui-failed.png"))
            raise
        finally:
            browser.close()

    assert shot.read_bytes().startswith(PNG_MAGIC)
    if SCREENSHOT_COPY.parent.is_dir():
        shutil.copyfile(shot, SCREENSHOT_COPY)
    assert CITATION.search(text), text
    assert "docs/testing.md" in text, text  # where the docs say how to run the tests
    assert "make test" in text, text


def _dismiss_release_notes(page: object) -> None:
    """Close the "What's New" dialog Open WebUI opens on a first visit, if it does."""
    button = page.get_by_role("button", name=re.compile("Okay, Let's Go", re.I))  # type: ignore[attr-defined]
    if button.count():
        button.first.click()
