"""Per-principal API keys in a shared file, stored only as salted scrypt hashes.

A key reads ``rs_<id>_<secret>``: the id picks the one entry to check, so a request costs one scrypt at
most (and none once that key has been verified in this process). The file is re-read when its mtime,
size or inode changes, checked at most every ``reload_ms``, so a revocation reaches every replica that
mounts it within that time; a changed file also drops every cached verification.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ragship.access.marks import groups_of
from ragship.access.principal import Principal, parse_scopes
from ragship.errors import AuthenticationError, ConfigError, InvalidRequestError

PREFIX = "rs_"
# scrypt cost: ~16 MiB and some tens of ms per check; paid once per key and process thanks to the cache.
_N, _R, _P = 2**14, 8, 1


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)


@dataclass(frozen=True)
class KeyEntry:
    """One key as the file holds it: no secret, only its salted hash."""

    key_id: str
    name: str
    groups: tuple[str, ...]
    scopes: tuple[str, ...]
    salt: str
    hash: str
    created_at: str

    def principal(self) -> Principal:
        """The principal this key stands for."""
        return Principal(self.name, frozenset(self.groups), parse_scopes(self.scopes))

    def public(self) -> dict[str, Any]:
        """What ``ragship keys list`` shows: no hash, no salt."""
        return {
            "name": self.name,
            "id": self.key_id,
            "groups": list(self.groups),
            "scopes": list(self.scopes),
            "created_at": self.created_at,
        }


class KeysFile:
    """The keys file: add, list and revoke keys (the CLI), and check a presented key (the guard).

    :param path: The JSON file (created on the first ``add``, mode 0600).
    :param reload_ms: Least time between two checks of the file for changes.
    """

    def __init__(self, path: str | Path, reload_ms: int = 1000) -> None:
        self.path = Path(path)
        self.reload_ms = reload_ms
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._entries: dict[str, KeyEntry] = {}
        self._verified: dict[str, Principal] = {}  # sha256 of a presented key -> its principal

    # -- the file ---------------------------------------------------------------------------------
    def _read(self) -> dict[str, KeyEntry]:
        try:
            data = json.loads(self.path.read_text())
            return {key_id: KeyEntry(key_id=key_id, **fields) for key_id, fields in data.get("keys", {}).items()}
        except FileNotFoundError:
            return {}
        except (ValueError, TypeError) as e:
            raise ConfigError(f"The keys file {self.path} is not a ragship keys file ({e}); restore it.") from e

    def _write(self, entries: dict[str, KeyEntry]) -> None:
        data = {
            "version": 1,
            "keys": {k: {f: v for f, v in e.__dict__.items() if f != "key_id"} for k, e in entries.items()},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
        os.replace(tmp, self.path)  # atomic: a reader sees the old file or the new one, never half

    def entries(self) -> list[KeyEntry]:
        """Every key, by name."""
        return sorted(self._read().values(), key=lambda e: (e.name, e.created_at))

    def add(self, name: str, groups: list[str], scopes: list[str]) -> str:
        """Create a key for ``name`` and return it: the only time it is ever shown.

        :raises InvalidRequestError: for an unknown scope or a bad group or name.
        """
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").replace("@", "").isalnum():
            raise InvalidRequestError(f"Key name {name!r}: use letters, digits and -_.@ only.")
        checked_scopes = sorted(s.value for s in parse_scopes(scopes))
        if not checked_scopes:
            raise InvalidRequestError("Give the key at least one scope (--scopes query,feedback).")
        checked_groups = groups_of(groups, "--groups") if groups else []
        entries = self._read()
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        entries[key_id] = KeyEntry(
            key_id=key_id,
            name=name,
            groups=tuple(checked_groups),
            scopes=tuple(checked_scopes),
            salt=salt.hex(),
            hash=_hash(secret, salt).hex(),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._write(entries)
        return f"{PREFIX}{key_id}_{secret}"

    def revoke(self, name: str) -> int:
        """Remove every key of ``name``; returns how many went."""
        entries = self._read()
        kept = {k: e for k, e in entries.items() if e.name != name}
        if len(kept) != len(entries):
            self._write(kept)
        return len(entries) - len(kept)

    # -- checking a key ---------------------------------------------------------------------------
    def _refresh(self) -> None:
        now = time.monotonic()
        if self._stamp is not None and (now - self._checked) * 1000 < self.reload_ms:
            return
        self._checked = now
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        if stamp != self._stamp:
            self._entries = self._read()
            self._verified = {}
            self._stamp = stamp

    def principal(self, key: str) -> Principal:
        """The principal of ``key``.

        :raises AuthenticationError: for a malformed, unknown or revoked key (never echoing it).
        """
        digest = hashlib.sha256(key.encode()).hexdigest()
        with self._lock:
            self._refresh()
            cached = self._verified.get(digest)
            if cached is not None:
                return cached
            _, _, rest = key.partition(PREFIX)
            key_id, _, secret = rest.partition("_")
            entry = self._entries.get(key_id)
            if entry is None or not secret:
                raise AuthenticationError("The API key is unknown or revoked.")
            if not hmac.compare_digest(_hash(secret, bytes.fromhex(entry.salt)).hex(), entry.hash):
                raise AuthenticationError("The API key is unknown or revoked.")
            principal = entry.principal()
            self._verified[digest] = principal
            return principal
