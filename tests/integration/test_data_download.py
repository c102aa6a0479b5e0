"""`ragship data get`: real HTTP over loopback from a local server that can drop connections and serve ranges."""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import struct
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ragship.eval.datasets import load_beir
from ragship.eval.download import SOURCE_FILE, DownloadError, Source, dataset_source, fetch_dataset

NAME = "tinybeir"


def beir_zip(name: str = NAME, docs: int = 400) -> bytes:
    """A BEIR-layout archive (``NAME/corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``), stored uncompressed
    so that it is large enough (~60 KB) to be cut in the middle."""
    corpus = "".join(
        json.dumps({"_id": f"d{i}", "title": f"Document {i}", "text": f"Text number {i} about topic {i % 7}. " * 3})
        + "\n"
        for i in range(docs)
    )
    queries = "".join(json.dumps({"_id": f"q{i}", "text": f"topic {i}"}) + "\n" for i in range(7))
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(7))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{name}/corpus.jsonl", corpus)
        zf.writestr(f"{name}/queries.jsonl", queries)
        zf.writestr(f"{name}/qrels/test.tsv", qrels)
    return buffer.getvalue()


PAYLOAD = beir_zip()
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class ArchiveServer(ThreadingHTTPServer):
    """Serves ``payload`` at any path; ``ranges`` toggles Range support; ``cut`` breaks the next body off."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ArchiveHandler)
        self.payload = PAYLOAD
        self.ranges = True
        self.cut: tuple[int, str] | None = None  # (bytes to send, "close" or "reset") for the next response only
        self.range_headers: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ArchiveHandler(BaseHTTPRequestHandler):
    server: ArchiveServer

    def do_GET(self) -> None:
        srv, body = self.server, self.server.payload
        asked = self.headers.get("Range")
        srv.range_headers.append(asked)
        if self.path.endswith("/missing.zip"):
            self.send_error(404)
            return
        start = 0
        if srv.ranges and asked and (match := re.fullmatch(r"bytes=(\d+)-", asked)):
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        if srv.ranges:
            self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut, srv.cut = srv.cut, None
        if cut is None:
            self.wfile.write(chunk)
            return
        sent, how = cut
        self.wfile.write(chunk[:sent])
        self.wfile.flush()
        if how == "reset":  # a dropped connection: RST instead of an orderly close
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def server() -> Iterator[ArchiveServer]:
    srv = ArchiveServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=10)


def source_for(srv: ArchiveServer, sha256: str = PAYLOAD_SHA256) -> Source:
    return dataset_source(NAME, url=f"{srv.url}/{NAME}.zip", sha256=sha256)


def leftovers(folder: Path) -> set[str]:
    """What a download left in the datasets folder, the (empty) lock file aside."""
    return {p.name for p in folder.iterdir() if not p.name.endswith(".lock")} if folder.exists() else set()


def test_download_verifies_and_the_loader_reads_it_by_name(server: ArchiveServer, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    result = fetch_dataset(source_for(server), tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert result.path == tmp_path / NAME and result.sha256 == PAYLOAD_SHA256 and not result.already_present
    assert result.bytes == len(PAYLOAD) and result.resumed_from == 0
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert leftovers(tmp_path) == {NAME}  # no .part, no unpacking folder
    assert json.loads((tmp_path / NAME / SOURCE_FILE).read_text())["sha256"] == PAYLOAD_SHA256
    data = load_beir(NAME, datasets_dir=tmp_path)
    assert data.name == NAME and len(data.corpus_ids) == 400 and len(data.queries) == 7

    again = fetch_dataset(source_for(server), tmp_path)
    assert again.already_present and len(server.range_headers) == 1  # nothing downloaded twice


def test_catalog_name_through_a_mirror_checks_the_published_checksums(server: ArchiveServer, tmp_path: Path) -> None:
    source = dataset_source("nfcorpus", mirror=f"{server.url}/beir/")
    assert source.url == f"{server.url}/beir/nfcorpus.zip" and source.md5 == "a89dba18a62ef92f7d323ec890a0d38d"
    with pytest.raises(DownloadError, match=r"checksum mismatch for nfcorpus .* expected 2,448,432.*deleted"):
        fetch_dataset(source, tmp_path)  # the server serves another archive than BEIR's
    assert leftovers(tmp_path) == set()


def test_bad_checksum_leaves_nothing(server: ArchiveServer, tmp_path: Path) -> None:
    with_password = server.url.replace("http://", "http://proxyuser:s3cret@")  # a company proxy's credentials
    with pytest.raises(DownloadError) as error:
        fetch_dataset(dataset_source(NAME, url=f"{with_password}/{NAME}.zip", sha256="0" * 64), tmp_path)
    message = str(error.value)
    # The one redactor (settings.redacted_url) drops the user and the password: only the host is named.
    assert "s3cret" not in message and "proxyuser" not in message and "127.0.0.1" in message
    assert f"SHA-256 {PAYLOAD_SHA256}, expected {'0' * 64}" in message and "\n" not in message
    assert f"ragship data get {NAME}" in message
    assert leftovers(tmp_path) == set()


def test_truncated_download_without_ranges_leaves_nothing_and_restarts(server: ArchiveServer, tmp_path: Path) -> None:
    server.ranges = False
    server.cut = (len(PAYLOAD) // 3, "close")  # fewer bytes than Content-Length, then an orderly close
    with pytest.raises(DownloadError, match=rf"truncated at {len(PAYLOAD) // 3:,} of {len(PAYLOAD):,} bytes") as error:
        fetch_dataset(source_for(server), tmp_path)
    assert "nothing was kept" in str(error.value)
    assert leftovers(tmp_path) == set()

    result = fetch_dataset(source_for(server), tmp_path)
    assert result.resumed_from == 0 and server.range_headers == [None, None]
    assert load_beir(tmp_path / NAME).name == NAME


def test_dropped_connection_resumes_with_a_range_request(server: ArchiveServer, tmp_path: Path) -> None:
    half = len(PAYLOAD) // 2
    server.cut = (half, "reset")
    with pytest.raises(DownloadError, match=r"connection dropped.*again to resume") as error:
        fetch_dataset(source_for(server), tmp_path)
    assert "\n" not in str(error.value)
    part = tmp_path / f"{NAME}.zip.part"
    kept = part.stat().st_size
    assert 0 < kept <= half and leftovers(tmp_path) == {part.name}  # the partial file only, no dataset folder

    result = fetch_dataset(source_for(server), tmp_path)
    assert server.range_headers == [None, f"bytes={kept}-"]
    assert result.resumed_from == kept and result.bytes == len(PAYLOAD) - kept
    assert result.sha256 == PAYLOAD_SHA256 and leftovers(tmp_path) == {NAME}
    assert len(load_beir(NAME, datasets_dir=tmp_path).corpus_ids) == 400


def test_a_server_that_stops_serving_ranges_gets_a_clean_restart(server: ArchiveServer, tmp_path: Path) -> None:
    server.cut = (len(PAYLOAD) // 2, "reset")
    with pytest.raises(DownloadError, match="again to resume"):
        fetch_dataset(source_for(server), tmp_path)
    server.ranges = False  # the next answer is 200 with the whole file, which replaces the partial one
    result = fetch_dataset(source_for(server), tmp_path)
    assert server.range_headers[1] is not None and result.resumed_from == 0 and result.bytes == len(PAYLOAD)
    assert result.sha256 == PAYLOAD_SHA256 and leftovers(tmp_path) == {NAME}


def test_a_partial_file_from_another_archive_is_dropped(server: ArchiveServer, tmp_path: Path) -> None:
    (tmp_path / f"{NAME}.zip.part").write_bytes(b"x" * (len(PAYLOAD) + 10))  # longer than the file: 416
    result = fetch_dataset(source_for(server), tmp_path)
    assert server.range_headers == [f"bytes={len(PAYLOAD) + 10}-", None]
    assert result.sha256 == PAYLOAD_SHA256 and leftovers(tmp_path) == {NAME}


def test_http_errors_and_unreachable_servers_name_the_fix(server: ArchiveServer, tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    with pytest.raises(
        DownloadError, match=r"could not download tinybeir from http://127\.0\.0\.1.*RAGSHIP_DATA__MIRROR"
    ):
        fetch_dataset(dataset_source(NAME, url=f"http://127.0.0.1:{port}/x.zip", sha256=PAYLOAD_SHA256), tmp_path)
    with pytest.raises(DownloadError, match=r"missing\.zip answered HTTP 404: check the name and the URL"):
        fetch_dataset(dataset_source(NAME, url=f"{server.url}/missing.zip", sha256=PAYLOAD_SHA256), tmp_path)
    server.payload = b"not a zip at all"
    with pytest.raises(DownloadError, match="cannot be unpacked"):
        fetch_dataset(source_for(server, hashlib.sha256(b"not a zip at all").hexdigest()), tmp_path)
    assert leftovers(tmp_path) == set()


def test_cli_get_then_list_and_eval_hint(server: ArchiveServer, tmp_path: Path, cli) -> None:
    env = {"RAGSHIP_DATA__DIR": str(tmp_path / "datasets"), "RAGSHIP_HOME": str(tmp_path / "home")}
    missing = cli("eval", "--dataset", NAME, "--mode", "bm25", env=env)
    said = missing.stderr
    assert missing.returncode == 2 and said.startswith("error: ") and said.count("\n") == 1  # one line
    assert f"dataset '{NAME}' is not downloaded yet" in said and "--url URL --sha256 HEX" in said

    got = cli("data", "get", NAME, "--url", f"{server.url}/{NAME}.zip", "--sha256", PAYLOAD_SHA256, env=env)
    assert got.returncode == 0, got.stderr
    assert f"sha256 {PAYLOAD_SHA256} verified" in got.stdout and got.stderr == ""  # no progress bar without a TTY
    assert (tmp_path / "datasets" / NAME / "corpus.jsonl").is_file()

    bad = cli("data", "get", "scifact", "--url", f"{server.url}/scifact.zip", env=env)
    said = bad.stderr
    assert bad.returncode == 2 and said.count("\n") == 1 and "checksum mismatch for scifact" in said

    listed = cli("data", "list", "--json", env=env)
    rows = {row["name"]: row["downloaded"] for row in json.loads(listed.stdout)}
    assert rows["nfcorpus"] is False and rows["scifact"] is False and rows[NAME] is True
