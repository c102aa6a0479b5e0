"""The `ragship` command, run as a subprocess the way users run it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def test_index_then_ask_json(tmp_path: Path, cli) -> None:
    store = str(tmp_path / "store")
    indexed = cli("index", "docs", "README.md", "--store", store, "--json")
    assert indexed.returncode == 0, indexed.stderr
    report = json.loads(indexed.stdout)
    assert report["failures"] == [] and "docs/testing.md" in report["files"]
    # `index` records the manifest like `sync` does (one indexing path): a sync right after writes nothing.
    synced = cli("sync", "docs", "README.md", "--store", store, "--json")
    assert synced.returncode == 0, synced.stderr
    after = json.loads(synced.stdout)
    assert (after["chunks_written"], after["added"], after["updated"], after["deleted"]) == (0, 0, 0, 0)
    assert after["unchanged"] == report["added"] == report["files_indexed"]

    asked = cli("ask", "How do I run the tests?", "--store", store, "--json")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["answer"]
    assert answer["sources"]
    assert set(answer["sources"][0]) >= {"id", "source", "score", "snippet"}
    assert any(s["source"].startswith(("docs/", "README.md")) for s in answer["sources"])

    top2 = json.loads(
        cli("ask", "retrieval modes", "--store", store, "--json", "--top-k", "2", "--mode", "bm25").stdout
    )
    assert len(top2["sources"]) == 2


def test_bad_files_are_summarised_and_good_ones_indexed(tmp_path: Path, make_pdf, cli) -> None:
    store = str(tmp_path / "store")
    batch = tmp_path / "batch"
    batch.mkdir()
    keep = tmp_path / "already.md"
    keep.write_text("# Already\n\nThe zebra archive was indexed earlier.\n")
    assert cli("index", str(keep), "--store", store).returncode == 0

    (batch / "good.md").write_text("# Good\n\nThe walrus manual explains flippers.\n")
    (batch / "empty.txt").write_bytes(b"")
    (batch / "binary.txt").write_bytes(b"\x7fELF\x00\x00\x01")
    (batch / "latin1.txt").write_bytes("d\xe9j\xe0 vu".encode("latin-1"))
    pdf = make_pdf("real.pdf", ["text"])
    (batch / "truncated.pdf").write_bytes(pdf.read_bytes()[:200])
    (batch / "big.txt").write_text("word " * 5000)
    (batch / "records.jsonl").write_text('{"text": "fine record about otters"}\n{broken\n')

    result = cli("index", str(batch), "--store", store, "--json", env={"RAGSHIP_MAX_FILE_BYTES": "10000"})
    assert result.returncode == 1
    report = json.loads(result.stdout)
    reasons = {Path(f["source"]).name: f["reason"] for f in report["failures"]}
    assert reasons["empty.txt"] == "empty file"
    assert "binary content" in reasons["binary.txt"]
    assert "not valid UTF-8" in reasons["latin1.txt"]
    assert reasons["truncated.pdf"].startswith("pdf conversion failed")
    assert "over the 10,000-byte limit" in reasons["big.txt"]
    assert "invalid JSON" in reasons["records.jsonl:2"]
    assert {Path(s).name for s in report["files"]} == {"good.md", "records.jsonl"}

    for question, expected in [
        ("walrus flippers", "good.md"),
        ("zebra archive", "already.md"),
        ("otters", "records.jsonl"),
    ]:
        answer = json.loads(cli("ask", question, "--store", store, "--json", "--mode", "bm25").stdout)
        assert Path(answer["sources"][0]["source"]).name == expected

    human = cli("index", str(batch), "--store", store, env={"RAGSHIP_MAX_FILE_BYTES": "10000"})
    # The two files indexed above are unchanged now and skipped, so the bad record of records.jsonl
    # is not reported again; the five bad files are.
    summary = human.stdout.replace("\n", " ")
    assert "failed: empty file" in human.stdout and "2 unchanged (skipped)" in summary and "5 failed" in summary
    allowed = cli("index", str(batch), "--store", store, "--allow-failures")
    assert allowed.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["index", "no/such/dir"], "path not found: no/such/dir"),
        (["ask", "q", "--spec", "missing.yaml"], "Spec file missing.yaml not found"),
    ],
)
def test_one_line_errors(tmp_path: Path, args: list[str], message: str, cli) -> None:
    result = cli(*args, "--store", str(tmp_path / "s"), cwd=tmp_path)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_malformed_spec_is_one_line(tmp_path: Path, cli) -> None:
    (tmp_path / "spec.yaml").write_text("indexing: [unclosed\n")
    result = cli("ask", "q", "--spec", "spec.yaml", "--store", "s", cwd=tmp_path)
    assert result.returncode == 2
    assert "not valid YAML at line" in result.stderr and "Traceback" not in result.stderr


def test_spec_init_show_validate(tmp_path: Path, cli) -> None:
    assert cli("spec", "init", "spec.yaml", cwd=tmp_path).returncode == 0
    again = cli("spec", "init", "spec.yaml", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    shown = cli("spec", "show", "spec.yaml", cwd=tmp_path)
    assert shown.stdout == (tmp_path / "spec.yaml").read_text()
    assert cli("spec", "validate", "spec.yaml", cwd=tmp_path).returncode == 0
    tuned = cli("spec", "init", "rm3.yaml", "--feedback-docs", "10", "--original-query-weight", "0.7", cwd=tmp_path)
    assert tuned.returncode == 0, tuned.stderr
    bm25 = yaml.safe_load((tmp_path / "rm3.yaml").read_text())["query"]["components"]["bm25_retriever"]
    assert (bm25["init_parameters"]["feedback_docs"], bm25["init_parameters"]["original_query_weight"]) == (10, 0.7)

    text = (tmp_path / "spec.yaml").read_text().replace("ragship.components.writers.StoreWriter", "ragship.nope.Writer")
    (tmp_path / "bad.yaml").write_text(text)
    bad = cli("spec", "validate", "bad.yaml", cwd=tmp_path)
    assert bad.returncode == 1
    assert "indexing.components.writer.type" in " ".join(bad.stderr.split())


def test_config_show_masks_secrets(tmp_path: Path, cli) -> None:
    result = cli("config", "show", "--json", cwd=tmp_path, env={"RAGSHIP_ES__API_KEY": "hunter2-secret"})
    assert result.returncode == 0
    assert "hunter2-secret" not in result.stdout + result.stderr
    assert json.loads(result.stdout)["es"]["api_key"] == "**********"
