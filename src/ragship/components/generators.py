"""The `local` generator: a Hugging Face chat model that resolves ragship model references (bundled SmolLM2, GGUF)."""

from __future__ import annotations

from typing import Any

from haystack import component, logging
from haystack_integrations.components.generators.transformers import TransformersChatGenerator

from ragship.environment import hub_offline
from ragship.errors import ModelError
from ragship.models.resolve import LocalLLM, resolve_local_llm

logger = logging.getLogger(__name__)


@component
class LocalChatGenerator(TransformersChatGenerator):
    """Haystack's ``TransformersChatGenerator`` whose ``model`` may be a ragship reference.

    The spec keeps the reference as written (``smollm2``, a ``.gguf`` file, a model directory, a hub id);
    it is resolved only when the model loads, so the same spec works wherever the model is installed.
    A GGUF file is read by transformers (the ``gguf`` package) and dequantized to float weights; its
    tokenizer and chat template come from the same file.

    Usage example:

    ```python
    generator = LocalChatGenerator(model="smollm2", task="text-generation",
                                   generation_kwargs={"max_new_tokens": 64, "do_sample": False})
    generator.warm_up()
    generator.run([ChatMessage.from_user("What is the capital of France?")])["replies"][0].text
    ```
    """

    def warm_up(self) -> None:
        """Resolve the model reference and load the model once.

        :raises ModelError: if the reference names nothing loadable (see
        :func:`ragship.models.resolve.resolve_local_llm`).
        """
        declared = self.huggingface_pipeline_kwargs
        if self.pipeline is not None or not isinstance(declared.get("model"), str):
            TransformersChatGenerator.warm_up(self)
            return
        resolved = resolve_local_llm(declared["model"])
        kwargs = {**declared, "model": resolved.model}
        if resolved.gguf_file:
            kwargs.update(_load_gguf(resolved, kwargs))
        self.huggingface_pipeline_kwargs = kwargs
        try:
            TransformersChatGenerator.warm_up(self)
        finally:
            self.huggingface_pipeline_kwargs = declared


def _load_gguf(resolved: LocalLLM, pipeline_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The model and tokenizer objects of a GGUF file, for ``transformers.pipeline`` (which cannot load GGUF)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_kwargs = dict(pipeline_kwargs.get("model_kwargs") or {})
    device_map = pipeline_kwargs.get("device_map")
    if device_map is not None:
        model_kwargs["device_map"] = device_map
    logger.info("Loading GGUF model {gguf_file} from {model}", gguf_file=resolved.gguf_file, model=resolved.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            resolved.model, gguf_file=resolved.gguf_file, local_files_only=hub_offline()
        )
        model = AutoModelForCausalLM.from_pretrained(
            resolved.model, gguf_file=resolved.gguf_file, local_files_only=hub_offline(), **model_kwargs
        )
    except ImportError as e:  # transformers reads GGUF through the gguf package
        raise ModelError(f"Loading {resolved.gguf_file} needs the gguf package ({e}): run `make setup`.") from e
    except (OSError, ValueError) as e:
        raise ModelError(f"Cannot load GGUF model {resolved.gguf_file} from {resolved.model}: {e}") from e
    loaded: dict[str, Any] = {"model": model, "tokenizer": tokenizer}
    if device_map is not None:  # placed by from_pretrained; the pipeline must not move it again
        loaded["device_map"] = None
    return loaded
