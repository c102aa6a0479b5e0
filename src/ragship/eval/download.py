"""Download a BEIR dataset archive: resumable, checksum-verified, unpacked into place atomically.

The archive streams into ``DIR/NAME.zip.part``; a broken-off transfer keeps that file when the server serves
byte ranges, and the next download asks for the rest (``Range``), or starts over when the server answers
with the whole file. The complete archive is checked against its checksums, unpacked into a temporary
folder beside the target, and renamed to ``DIR/NAME`` in one step: whatever fails, ``DIR/NAME`` is either
absent or complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from filelock import FileLock

from ragship.eval.catalog import CATALOG, Archive
from ragship.eval.datasets import DatasetError, check_dataset_name, is_beir_folder
from ragship.settings import redacted_url

#: ``progress(bytes_done, bytes_total)``; the total is None when neither the server nor the catalog says it.
ByteProgress = Callable[[int, int | None], None]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Written into each unpacked dataset: where it came from and what was verified.
SOURCE_FILE = ".ragship-source.json"


class DownloadError(DatasetError):
    """A dataset download or its checks failed; the message says how to retry."""


@dataclass(frozen=True)
class Source:
    """What to download for a dataset name and how to verify it.

    :param md5: Expected MD5 (the publisher's), or None.
    :param sha256: Expected SHA-256, or None; at least one checksum is always set.
    :param size: Expected bytes, or None.
    """

    name: str
    url: str
    md5: str | None
    sha256: str | None
    size: int | None = None


@dataclass(frozen=True)
class FetchResult:
    """The outcome of :func:`fetch_dataset`."""

    name: str
    path: Path
    url: str
    sha256: str | None  # of the archive; None when the dataset was already there
    bytes: int  # downloaded by this call
    resumed_from: int  # bytes already in the partial file (0: a fresh start)
    already_present: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {**asdict(self), "path": str(self.path)}


def dataset_source(
    name: str, *, url: str | None = None, sha256: str | None = None, mirror: str | None = None
) -> Source:
    """Where to get ``name`` and its checksums: the catalog's, a mirror's copy of it, or an explicit archive.

    :param url: Archive URL that replaces the catalog's (or the mirror's) location.
    :param sha256: SHA-256 of the archive at ``url``; replaces the catalog's checksums (another archive).
    :param mirror: Base URL serving ``NAME.zip`` in place of the published location.
    :raises DatasetError: for a bad name or checksum, or a name outside the catalog without ``url`` and ``sha256``.
    """
    check_dataset_name(name)
    if sha256 is not None and not _SHA256.match(sha256.lower()):
        raise DatasetError(f"--sha256 {sha256!r}: expected 64 hexadecimal digits (the output of `sha256sum FILE`).")
    archive: Archive | None = CATALOG.get(name)
    if archive is None:
        if url is None or sha256 is None:
            raise DatasetError(
                f"unknown dataset {name!r} (known: {', '.join(sorted(CATALOG))}); for another archive in BEIR's "
                f"layout pass both --url URL and --sha256 HEX."
            )
        return Source(name, url, md5=None, sha256=sha256.lower())
    location = url or (archive.url(mirror) if mirror else archive.url())
    if sha256 is not None:
        return Source(name, location, md5=None, sha256=sha256.lower())
    return Source(name, location, md5=archive.md5, sha256=archive.sha256, size=archive.size)


def fetch_dataset(
    source: Source, directory: Path, *, timeout_s: float = 60.0, progress: ByteProgress | None = None
) -> FetchResult:
    """Download, verify and unpack ``source`` into ``directory/NAME``; a dataset already there is kept.

    :param directory: The datasets folder (the ``datasets_dir`` setting).
    :param timeout_s: Connect and read timeout of the download.
    :raises DownloadError: with the problem and the fix (get again to resume, a mirror, a checksum).
    """
    target = directory / source.name
    shown = redacted_url(source.url)
    directory.mkdir(parents=True, exist_ok=True)
    # One download at a time per datasets folder: a second `get` of the same name waits, then finds it in place.
    with FileLock(str(directory / ".download.lock")):
        if is_beir_folder(target):
            return FetchResult(source.name, target, shown, None, 0, 0, already_present=True)
        if target.exists():
            raise DownloadError(
                f"{target} exists but is not a BEIR dataset (no corpus.jsonl, queries.jsonl, qrels/): delete it, "
                f"then run `ragship data get {source.name}` again."
            )
        for stale in directory.glob(f".{source.name}.*.unpacking"):  # left by a process killed while unpacking
            shutil.rmtree(stale, ignore_errors=True)
        part = directory / f"{source.name}.zip.part"
        resumed_from, received = _download(source, part, timeout_s, progress)
        digest = _verify(source, part)
        _unpack(source, part, target)
        part.unlink(missing_ok=True)
    return FetchResult(source.name, target, shown, digest, received, resumed_from, already_present=False)


def _download(source: Source, part: Path, timeout_s: float, progress: ByteProgress | None) -> tuple[int, int]:
    """Stream the archive into ``part``, resuming it when possible; returns (resumed from, bytes received)."""
    shown = redacted_url(source.url)
    offset = part.stat().st_size if part.exists() else 0
    # identity: byte ranges and Content-Length then count the file's own bytes, not a compressed stream's.
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        with (
            httpx.Client(timeout=timeout_s, follow_redirects=True) as client,
            client.stream("GET", source.url, headers=headers) as response,
        ):
            if offset and (
                response.status_code == 416 or (response.status_code == 206 and _range_start(response) != offset)
            ):
                # The partial file is no prefix of what the server has now (it changed, or the part is whole):
                # start over.
                part.unlink()
                return _download(source, part, timeout_s, progress)
            if response.status_code == 206 and offset:
                total = _total(response, offset) or source.size
            elif response.status_code == 200:
                offset = 0  # no resume: the server sent the whole file, which replaces the partial one
                total = _total(response, 0) or source.size
            else:
                if response.status_code < 500:  # the request itself is wrong; a server error may pass, keep the part
                    part.unlink(missing_ok=True)
                raise DownloadError(
                    f"{shown} answered HTTP {response.status_code}: check the name and the URL (--url, "
                    f"RAGSHIP_DATA__MIRROR), then run `ragship data get {source.name}` again."
                )
            resumable = response.status_code == 206 or response.headers.get("accept-ranges", "").lower() == "bytes"
            done = offset
            try:
                with part.open("ab" if offset else "wb") as f:
                    for block in response.iter_bytes():  # as received: a break keeps every byte that came
                        f.write(block)
                        done += len(block)
                        if progress is not None:
                            progress(done, total)
            except httpx.TransportError as e:
                raise _broken_off(source, part, done, total, resumable, e) from e
            except OSError as e:
                raise DownloadError(
                    f"could not write {part} ({e.strerror or e}): free disk space or set RAGSHIP_DATA__DIR "
                    f"elsewhere, then run `ragship data get {source.name}` again."
                ) from e
    except httpx.TransportError as e:  # before any byte of the body: no connection, no answer
        raise DownloadError(
            f"could not download {source.name} from {shown} ({type(e).__name__}: {e}): check the network, or point "
            f"RAGSHIP_DATA__MIRROR (or --url) at a reachable copy, then run `ragship data get {source.name}` again."
        ) from e
    if total is not None and done < total:
        # The server ended the body cleanly but early (no Content-Length, or a mirror holding a short file).
        raise _broken_off(source, part, done, total, resumable=False, cause=None)
    return offset, done - offset


def _range_start(response: httpx.Response) -> int | None:
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("content-range", ""))
    return int(match.group(1)) if match else None


def _total(response: httpx.Response, offset: int) -> int | None:
    length = response.headers.get("content-length")
    return offset + int(length) if length and length.isdigit() else None


def _broken_off(
    source: Source, part: Path, done: int, total: int | None, resumable: bool, cause: Exception | None
) -> DownloadError:
    """The error for a body that ended short; keeps ``part`` only when the server can resume it."""
    of_total = f" of {total:,}" if total is not None else ""
    why = f"connection dropped: {cause}" if cause is not None else "the server sent fewer bytes than expected"
    head = f"download of {source.name} from {redacted_url(source.url)} truncated at {done:,}{of_total} bytes ({why})"
    if resumable and done > 0:
        return DownloadError(f"{head}; kept {part.name}: run `ragship data get {source.name}` again to resume.")
    part.unlink(missing_ok=True)
    return DownloadError(
        f"{head}; nothing was kept (the server cannot resume): run `ragship data get {source.name}` again."
    )


def _file_digests(path: Path) -> tuple[str, str]:
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            md5.update(block)
            sha256.update(block)
    return md5.hexdigest(), sha256.hexdigest()


def _verify(source: Source, part: Path) -> str:
    """Check the complete archive's size and checksums; a mismatch deletes it. Returns its SHA-256."""
    md5, sha256 = _file_digests(part)
    size = part.stat().st_size
    problem = None
    if source.size is not None and size != source.size:
        problem = f"{size:,} bytes, expected {source.size:,}"
    elif source.sha256 is not None and sha256 != source.sha256:
        problem = f"SHA-256 {sha256}, expected {source.sha256}"
    elif source.md5 is not None and md5 != source.md5:
        problem = f"MD5 {md5}, expected {source.md5} (BEIR's published value)"
    if problem is not None:
        part.unlink()
        raise DownloadError(
            f"checksum mismatch for {source.name} from {redacted_url(source.url)}: {problem}; the file was deleted. "
            f"Run `ragship data get {source.name}` again; if it fails again, the server (a mirror? --url?) serves "
            "another file."
        )
    return sha256


def _unpack(source: Source, archive: Path, target: Path) -> None:
    """Unpack into a temporary folder beside ``target``, check the BEIR layout, then rename it into place."""
    scratch = Path(tempfile.mkdtemp(prefix=f".{source.name}.", suffix=".unpacking", dir=target.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(scratch)  # zipfile drops absolute paths and '..' from member names
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            archive.unlink(missing_ok=True)
            raise DownloadError(
                f"{archive.name} from {redacted_url(source.url)} passed its checksum but cannot be unpacked ({e}); "
                "check that --url and --sha256 name a zip archive."
            ) from e
        root = _beir_root(scratch, source.name)
        if root is None:
            archive.unlink(missing_ok=True)
            raise DownloadError(
                f"{archive.name} from {redacted_url(source.url)} holds no BEIR dataset (corpus.jsonl, queries.jsonl, "
                f"qrels/*.tsv, at the top or in {source.name}/): check --url."
            )
        provenance = {"name": source.name, "url": redacted_url(source.url), "md5": source.md5, "sha256": source.sha256}
        (root / SOURCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
        os.replace(root, target)  # atomic: the dataset appears whole or not at all
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _beir_root(folder: Path, name: str) -> Path | None:
    """The unpacked folder holding the dataset: ``NAME/`` (BEIR's layout), the top, or its only sub-folder."""
    subfolders = [p for p in folder.iterdir() if p.is_dir() and p.name != "__MACOSX"]
    for candidate in (folder / name, folder, *(subfolders if len(subfolders) == 1 else [])):
        if is_beir_folder(candidate):
            return candidate
    return None
