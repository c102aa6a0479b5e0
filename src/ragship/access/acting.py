"""``--as PRINCIPAL`` for the CLI and notebooks: see what a key's holder, or a set of groups, may read."""

from __future__ import annotations

from ragship.access.keys import KeysFile
from ragship.access.scope import AccessScope
from ragship.errors import ConfigError
from ragship.settings import Settings


def scope_as(who: str | None, settings: Settings) -> AccessScope:
    """The access scope of ``who``: a key's name in the keys file, or ``groups:finance,hr``; None: a local admin.

    :raises ConfigError: when ``who`` is neither, saying how to name it.
    """
    if not who:
        return AccessScope.everything()
    if who.startswith("groups:"):
        groups = [g.strip() for g in who.removeprefix("groups:").split(",") if g.strip()]
        return AccessScope.of_groups(groups, settings.access.default, name=who)
    if settings.serving.keys_file is not None:
        for entry in KeysFile(settings.serving.keys_file).entries():
            if entry.name == who:
                return entry.principal().access(settings.access.default)
    raise ConfigError(
        f"--as {who!r}: no key of that name in the keys file (RAGSHIP_SERVING__KEYS_FILE); "
        "name a key, or give groups as --as groups:finance,hr."
    )
