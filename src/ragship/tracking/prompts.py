"""The spec's prompt template in MLflow's Prompt Registry, linked to the runs that used it.

A spec with an LLM generator holds a ChatPromptBuilder template (Jinja; MLflow renders those too). It is
registered as prompt ``<registered model>-<spec name>``; a new prompt version only when the template
changed, so the registry's versions are the prompt's history. Extractive specs have no prompt.
"""

from __future__ import annotations

import re
from typing import Any

from ragship.settings import Settings, get_settings
from ragship.spec import PipelineSpec, Role

_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9_.-]")


def prompt_template(spec: PipelineSpec) -> list[dict[str, str]] | str | None:
    """The spec's prompt as MLflow chat messages (``role``, ``content``), or a text template, or None."""
    from haystack.dataclasses import ChatMessage

    builders = spec.components_of("query", Role.PROMPT_BUILDER)
    if not builders:
        return None
    template: Any = next(iter(builders.values())).get("init_parameters", {}).get("template")
    if not template:
        return None
    if isinstance(template, str):
        return template
    messages = [ChatMessage.from_dict(m) for m in template]
    return [{"role": m.role.value, "content": m.text or ""} for m in messages]


def prompt_name(spec: PipelineSpec, settings: Settings | None = None) -> str:
    """The registry name of a spec's prompt."""
    settings = settings or get_settings()
    return _NOT_IN_NAMES.sub("-", f"{settings.mlflow.registered_model}-{spec.name}")


def link_spec_prompt(spec: PipelineSpec, run_id: str, settings: Settings | None = None) -> str | None:
    """Register the spec's prompt if its template is new, link that version to the run; returns its URI.

    Returns None for a spec without a prompt.
    """
    import mlflow

    template = prompt_template(spec)
    if template is None:
        return None
    name = prompt_name(spec, settings)
    latest = mlflow.genai.load_prompt(
        f"prompts:/{name}@latest", allow_missing=True, link_to_model=False, cache_ttl_seconds=0
    )
    if latest is None or latest.template != template:
        latest = mlflow.genai.register_prompt(
            name,
            template,
            commit_message=f"from spec {spec.name} ({spec.hash})",
            tags={"spec_name": spec.name, "spec_hash": spec.hash},
        )
    mlflow.MlflowClient().link_prompt_version_to_run(run_id, latest)
    return f"prompts:/{name}/{latest.version}"
