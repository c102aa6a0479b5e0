"""QuestionCondenser: an LLM spec's first stage, which rewrites a follow-up into a standalone question."""

from __future__ import annotations

import re
from typing import Any

from haystack import Pipeline, component, default_from_dict, default_to_dict
from haystack.dataclasses import ChatMessage
from jinja2.sandbox import SandboxedEnvironment

from ragship.components.followups import topic_turns
from ragship.errors import SpecError
from ragship.spec.defaults import template_parameter

# A rewrite is one question: the model's first line, without a label or quotes it may add.
_LABEL = re.compile(
    r"^\s*(?:rewritten (?:follow-up )?question|standalone question|follow-up question|question)\s*:\s*", re.IGNORECASE
)


@component
class QuestionCondenser:
    """Rewrites a follow-up ("And how do I stop it?") into a standalone question with the pipeline's LLM.

    With no history it passes the question on untouched and calls no model. Otherwise it renders its prompt
    (Jinja: ``history``, the earlier user turns oldest first, and ``question``) and asks the chat generator
    named ``generator`` in the same pipeline, which :func:`attach_condensers` lends it, so the spec's one LLM
    (or its remote stand-in) serves both stages. A reply that is not one question (no question mark, or
    longer than ``max_chars``: a small model may answer instead of rewriting) gives way to the question
    joined to the earlier turns it leans on (:func:`ragship.components.followups.topic_turns`; none for a question that
    stands alone).

    Usage example::

        condenser = QuestionCondenser(generator="llm")
        pipeline.add_component("condenser", condenser)
        pipeline.connect("condenser.query", "bm25_retriever.query")
        attach_condensers(pipeline)

    :param generator: Name of the pipeline's chat generator to borrow.
    :param system_prompt: The rewriting instructions (None: the built-in spec's, in ``spec/template.yaml``).
    :param user_prompt: Jinja template of the user message, with ``history`` and ``question`` (None: the
        built-in spec's). An instruction after the questions, not a "Rewritten:" cue: SmolLM2-135M answered the
        cue instead of rewriting.
    :param max_chars: Longest rewrite kept.
    """

    def __init__(
        self,
        generator: str = "llm",
        system_prompt: str | None = None,
        user_prompt: str | None = None,
        max_chars: int = 500,
    ) -> None:
        if max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {max_chars}")
        self.generator = generator
        self.system_prompt: str = system_prompt or template_parameter("condenser", "system_prompt")
        self.user_prompt: str = user_prompt or template_parameter("condenser", "user_prompt")
        self.max_chars = max_chars
        self._template = SandboxedEnvironment().from_string(self.user_prompt)
        self.chat_generator: Any = None

    def to_dict(self) -> dict[str, Any]:
        """Serialize (without the borrowed generator)."""
        return default_to_dict(
            self,
            generator=self.generator,
            system_prompt=self.system_prompt,
            user_prompt=self.user_prompt,
            max_chars=self.max_chars,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuestionCondenser:
        """Deserialize."""
        return default_from_dict(cls, data)

    def warm_up(self) -> None:
        """Load the borrowed generator's model (once: generators warm up idempotently)."""
        if self.chat_generator is not None and hasattr(self.chat_generator, "warm_up"):
            self.chat_generator.warm_up()

    @component.output_types(query=str)
    def run(self, question: str, history: list[str] | None = None) -> dict[str, Any]:
        """The standalone form of ``question`` given ``history`` (earlier user turns, oldest first)."""
        turns = [turn for turn in history or [] if turn.strip()]
        if not turns:
            return {"query": question}
        if self.chat_generator is None:
            raise SpecError(
                f"QuestionCondenser has no chat generator: the query pipeline needs a component named "
                f"{self.generator!r} (init_parameters.generator) and ragship.components.condensers.attach_condensers()."
            )
        messages = [
            ChatMessage.from_system(self.system_prompt),
            ChatMessage.from_user(self._template.render(history=turns, question=question)),
        ]
        replies = self.chat_generator.run(messages=messages)["replies"]
        rewrite = _first_line(replies[0].text or "") if replies else ""
        if 0 < len(rewrite) <= self.max_chars and rewrite.endswith("?"):
            return {"query": rewrite}
        return {"query": " ".join([*topic_turns(question, turns), question])}


def _first_line(text: str) -> str:
    line = next((line for line in text.strip().splitlines() if line.strip()), "")
    return _LABEL.sub("", line).strip().strip("\"'` ").strip()


def attach_condensers(pipeline: Pipeline, lender: Pipeline | None = None) -> Pipeline:
    """Lend every :class:`QuestionCondenser` of ``pipeline`` the chat generator it names in ``lender`` (the
    full query pipeline; ``pipeline`` itself when None, while a retrieval-only cut lacks the generator).

    :raises SpecError: when the named generator is not in ``lender``.
    """
    lender = lender or pipeline
    components = dict(lender.walk())
    for name, instance in pipeline.walk():
        if isinstance(instance, QuestionCondenser):
            if instance.generator not in components:
                raise SpecError(
                    f"query.components.{name}.init_parameters.generator: {instance.generator!r} is not a component "
                    f"of the query pipeline; name its chat generator (one of {sorted(components)})."
                )
            instance.chat_generator = components[instance.generator]
    return pipeline
