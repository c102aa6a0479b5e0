"""Shared test setup: offline model hub, markers from folders, file factories."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The embedding model ships in a package; tests must never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
NFCORPUS = REPO.parent / "shared" / "data" / "nfcorpus"  # BEIR NFCorpus, when the checkout has it beside it
# Dataset names (`--dataset nfcorpus`, grids) resolve in the shared copy, when there is one, without a download.
if NFCORPUS.parent.is_dir():
    os.environ.setdefault("RAGSHIP_DATA__DIR", str(NFCORPUS.parent))
RAGSHIP = str(Path(sys.executable).parent / "ragship")
# Tools the project must bring itself. A developer's machine may have any of them on PATH (pyenv shims,
# ~/.local/bin, /usr/local/bin), which once hid a missing install step; the packaging tests put failing
# stand-ins for them first on a PATH that is otherwise only the system's own folders.
DECOYED_TOOLS = ("uv", "uvx", "pip", "pip3", "python", "python3", "bentoml", "ragship", "jupyter")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in {"unit", "integration", "chart"}:
            item.add_marker(getattr(pytest.mark, folder))


@pytest.fixture
def make_pdf(tmp_path: Path):
    """Write a real PDF with the given lines of text (reportlab) and return its path."""

    def _make(name: str, lines: list[str]) -> Path:
        from reportlab.lib.pagesizes import A4
        from reportlab.pdfgen import canvas

        path = tmp_path / name
        pdf = canvas.Canvas(str(path), pagesize=A4)
        y = 800
        for line in lines:
            pdf.drawString(50, y, line)
            y -= 20
        pdf.save()
        return path

    return _make


@pytest.fixture
def make_docx(tmp_path: Path):
    """Write a real .docx with the given paragraphs (python-docx) and return its path."""

    def _make(name: str, paragraphs: list[str]) -> Path:
        import docx

        document = docx.Document()
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
        path = tmp_path / name
        document.save(str(path))
        return path

    return _make


@pytest.fixture(scope="session")
def es_node() -> Iterator[Any]:
    """The session's local Elasticsearch node, or None when RAGSHIP_TEST_ES_URL points elsewhere."""
    from ragship.local.es_node import LocalElasticsearch
    from ragship.settings import load_settings

    if os.environ.get("RAGSHIP_TEST_ES_URL"):
        yield None
        return
    node = LocalElasticsearch(load_settings().local_es, name=f"pytest-{os.getpid()}")
    try:
        node.start(port=0)
        yield node
    finally:
        node.remove()


@pytest.fixture(scope="session")
def es_url(es_node: Any) -> str:
    """A real Elasticsearch: RAGSHIP_TEST_ES_URL if set, else a node started for this session."""
    if es_node is None:
        return os.environ["RAGSHIP_TEST_ES_URL"]
    url = es_node.status().url
    assert url, "the session's Elasticsearch node reports no URL"
    return str(url)


@pytest.fixture
def es_alias(es_url: str) -> Iterator[str]:
    """A unique alias per test; its indices are deleted afterwards."""
    from ragship.stores.elasticsearch import ElasticsearchStore

    alias = f"test-{uuid.uuid4().hex[:12]}"
    yield alias
    ElasticsearchStore(es_url, alias).delete_index()


@pytest.fixture(scope="session")
def cli():
    """Run the installed `ragship` command the way a user does (subprocess, offline hub)."""

    def run(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [RAGSHIP, *args],
            cwd=cwd,
            env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def nfcorpus_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 50 judged test queries of NFCorpus with up to 8 judged documents each (highest grades
    first; the corpus stays small enough to embed quickly) and 100 other documents."""
    target = tmp_path_factory.mktemp("nfcorpus-slice") / "nfcorpus"
    (target / "qrels").mkdir(parents=True)
    lines = (NFCORPUS / "qrels" / "test.tsv").read_text().splitlines()
    header, rows = lines[0], [r.split("\t") for r in lines[1:]]
    queries = sorted({r[0] for r in rows})[:50]
    kept_rows = []
    for qid in queries:
        judged = sorted((r for r in rows if r[0] == qid), key=lambda r: (-int(r[2]), r[1]))
        kept_rows.extend(judged[:8])
    docs = {r[1] for r in kept_rows}
    corpus = []
    with (NFCORPUS / "corpus.jsonl").open() as f:
        for i, line in enumerate(f):
            if json.loads(line)["_id"] in docs or i < 100:
                corpus.append(line)
    (target / "corpus.jsonl").write_text("".join(corpus))
    with (NFCORPUS / "queries.jsonl").open() as f:
        (target / "queries.jsonl").write_text("".join(q for q in f if json.loads(q)["_id"] in queries))
    (target / "qrels" / "test.tsv").write_text("\n".join([header, *("\t".join(r) for r in kept_rows)]) + "\n")
    return target


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer GPT-2 with random weights and a word-level tokenizer, saved like any HF model."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    target = tmp_path_factory.mktemp("tiny-lm")
    words = (REPO / "docs" / "testing.md").read_text()
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator([words], trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[EOS]"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")
    fast.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    config = GPT2Config(
        vocab_size=len(fast),
        n_positions=8192,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=fast.eos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(target)
    fast.save_pretrained(target)
    return target


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer BERT sequence classifier (one relevance logit) with random weights and a word-level
    tokenizer that encodes (query, passage) pairs, saved like any Hugging Face cross-encoder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    target = tmp_path_factory.mktemp("tiny-cross-encoder")
    specials = ["[UNK]", "[PAD]", "[CLS]", "[SEP]"]
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(
        [(REPO / "docs" / "testing.md").read_text()], trainers.WordLevelTrainer(special_tokens=specials)
    )
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )
    config = BertConfig(
        vocab_size=len(fast),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,
        pad_token_id=fast.pad_token_id,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(target)
    fast.save_pretrained(target)
    return target


@pytest.fixture(scope="session")
def bare_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH with nothing the developer installed: failing stand-ins for :data:`DECOYED_TOOLS`, then
    ``/usr/bin:/bin``. A test that runs the project's commands under it fails when one of them reaches
    for a tool that the project's own files do not install."""
    decoys = tmp_path_factory.mktemp("decoy-bin")
    for name in DECOYED_TOOLS:
        tool = decoys / name
        tool.write_text(
            f'#!/bin/sh\necho "decoy {name} on PATH was run: the project must use its own tools" >&2\nexit 97\n'
        )
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return os.pathsep.join([str(decoys), "/usr/bin", "/bin"])


@pytest.fixture(scope="session")
def environment_scripts() -> Path:
    """The scripts folder of the environment the tests run in (``.venv/bin``)."""
    return Path(sysconfig.get_path("scripts"))
