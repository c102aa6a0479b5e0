"""The Generator service: the spec's LLM (a local Hugging Face model, GPU when present, or an
OpenAI-compatible endpoint it proxies), whole or token-streamed."""

from __future__ import annotations

from collections.abc import Generator as Gen
from typing import Any

import bentoml

from ragship.observability.tracing import bentoml_tracing
from ragship.serving.backends import SpecGenerator
from ragship.serving.common import model_resources, spec_and_origin
from ragship.settings import get_settings

_SERVING = get_settings().serving


@bentoml.service(
    name="ragship-generator",
    **bentoml_tracing(get_settings().tracing),
    resources=model_resources(),
    traffic={"timeout": _SERVING.timeout_s},
    workers=1,
    threads=8,
)
class Generator:
    """Runs the served spec's chat generator; idle (nothing loaded) when the spec answers extractively."""

    def __init__(self) -> None:
        spec, _ = spec_and_origin()
        self.llm = SpecGenerator(spec)
        self.llm.warm_up()

    @bentoml.api
    def generate(self, messages: list[dict[str, Any]], generation_kwargs: dict[str, Any] | None = None) -> str:
        """The reply to chat ``messages`` (Haystack ``ChatMessage.to_dict()`` form).

        ``generation_kwargs`` (e.g. ``max_new_tokens``, ``temperature``) override the spec's for this reply.
        """
        return self.llm.generate(messages, generation_kwargs)

    @bentoml.api
    def stream(
        self, messages: list[dict[str, Any]], generation_kwargs: dict[str, Any] | None = None
    ) -> Gen[str, None, None]:
        """The reply in pieces as the model produces them."""
        yield from self.llm.stream(messages, generation_kwargs)

    @bentoml.api
    def model_info(self) -> dict[str, str]:
        """What generates answers."""
        return {"generator": self.llm.kind}
