"""What a spec's components do, found by class: a registry of the ragship and Haystack classes of each role.

A spec names each component by its class path (``type``). A component plays a role when its class is one of
the role's classes or a subclass of one, so a spec that swaps in Haystack's ``DocumentJoiner`` for ragship's
``FusionJoiner`` is still tuned by the joiner knobs. Classes are imported only when a path is not listed
verbatim, through Haystack's deserialization allowlist (a spec cannot make this import an untrusted module).
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from typing import Any


class Role(StrEnum):
    """The parts of the built-in pipelines that knobs and runners look for."""

    CONVERTER = "converter"
    SPLITTER = "splitter"
    DOCUMENT_EMBEDDER = "document embedder"
    TEXT_EMBEDDER = "text embedder"
    BM25_RETRIEVER = "bm25 retriever"
    EMBEDDING_RETRIEVER = "embedding retriever"
    JOINER = "joiner"
    RANKER = "ranker"
    ANSWERER = "answerer"
    PROMPT_BUILDER = "prompt builder"
    OPENAI_GENERATOR = "openai generator"
    LOCAL_GENERATOR = "local generator"


_ST = "haystack_integrations.components.embedders.sentence_transformers"
ROLE_CLASSES: dict[Role, tuple[str, ...]] = {
    Role.CONVERTER: ("ragship.components.converters.FileConverter",),
    Role.SPLITTER: (
        "ragship.components.splitters.SectionSplitter",
        "haystack.components.preprocessors.document_splitter.DocumentSplitter",
    ),
    Role.DOCUMENT_EMBEDDER: (
        "ragship.components.embedders.DocumentEmbedder",
        f"{_ST}.sentence_transformers_document_embedder.SentenceTransformersDocumentEmbedder",
    ),
    Role.TEXT_EMBEDDER: (
        "ragship.components.embedders.TextEmbedder",
        f"{_ST}.sentence_transformers_text_embedder.SentenceTransformersTextEmbedder",
    ),
    Role.BM25_RETRIEVER: ("ragship.components.retrievers.StoreBM25Retriever",),
    Role.EMBEDDING_RETRIEVER: ("ragship.components.retrievers.StoreEmbeddingRetriever",),
    Role.JOINER: (
        "haystack.components.joiners.document_joiner.DocumentJoiner",
        # a subclass of it, listed so that reading the default spec imports no component (serving.topology)
        "ragship.components.joiners.FusionJoiner",
    ),
    Role.RANKER: (
        "ragship.components.rankers.CrossEncoderRanker",
        "haystack_integrations.components.rankers.sentence_transformers.sentence_transformers_similarity."
        "SentenceTransformersSimilarityRanker",
        "haystack.components.rankers.meta_field.MetaFieldRanker",
        "haystack.components.rankers.lost_in_the_middle.LostInTheMiddleRanker",
    ),
    Role.ANSWERER: ("ragship.components.answerers.ExtractiveAnswerer",),
    Role.PROMPT_BUILDER: (
        "haystack.components.builders.chat_prompt_builder.ChatPromptBuilder",
        "haystack.components.builders.prompt_builder.PromptBuilder",
    ),
    Role.OPENAI_GENERATOR: ("haystack.components.generators.chat.openai.OpenAIChatGenerator",),
    Role.LOCAL_GENERATOR: ("ragship.components.generators.LocalChatGenerator",),
}

# Classes of the built-in pipelines that play none of the roles: answered without an import, so that reading
# the default spec loads no pipeline code (BentoML's supervisor reads it: ragship.serving.topology).
NO_ROLE: frozenset[str] = frozenset(
    {
        "haystack.components.builders.answer_builder.AnswerBuilder",
        "ragship.components.ids.StableIdAssigner",
        "ragship.components.writers.StoreWriter",
    }
)
_LISTED = frozenset(path for paths in ROLE_CLASSES.values() for path in paths)


@cache
def component_class(type_path: str) -> type | None:
    """The class a spec's ``type`` names; None when it names nothing importable or nothing trusted."""
    from haystack.core.errors import DeserializationError
    from haystack.core.serialization import import_class_by_name

    import ragship.components  # puts ragship's components on Haystack's allowlist

    _ = ragship.components
    try:
        return import_class_by_name(type_path)
    except (ImportError, DeserializationError, ValueError, AttributeError):
        return None


def role_classes(role: Role) -> tuple[type, ...]:
    """The classes of ``role`` (for ``isinstance`` on built pipelines)."""
    return tuple(cls for cls in map(component_class, ROLE_CLASSES[role]) if cls is not None)


def plays(component: Any, role: Role) -> bool:
    """Whether a spec's component dict is of ``role``: its class is one of the role's, or a subclass."""
    type_path = component.get("type") if isinstance(component, dict) else None
    if not isinstance(type_path, str):
        return False
    if type_path in NO_ROLE:
        return False
    if type_path in _LISTED:  # a listed class plays exactly the roles it is listed under: no import
        return type_path in ROLE_CLASSES[role]
    cls = component_class(type_path)
    return cls is not None and issubclass(cls, role_classes(role))
