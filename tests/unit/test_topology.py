"""Which services `bentoml serve bentos.query:RAG` starts, and how the supervisor decides it without imports."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import pytest

from ragship.spec import default_spec


def _ragship_components() -> list[str]:
    """Class paths of every Haystack component ragship defines."""
    from haystack import component

    import ragship.components

    for module in pkgutil.iter_modules(ragship.components.__path__):
        importlib.import_module(f"ragship.components.{module.name}")
    return [path for path in component.registry if path.startswith("ragship.components.")]


def test_the_supervisors_llm_rule_agrees_with_the_apis_import_for_every_listed_and_own_class() -> None:
    from ragship.components.remote import is_chat_generator
    from ragship.serving.topology import is_llm
    from ragship.spec.roles import NO_ROLE, ROLE_CLASSES

    listed = {path for paths in ROLE_CLASSES.values() for path in paths} | NO_ROLE
    own = _ragship_components()
    assert "ragship.components.generators.LocalChatGenerator" in own and len(own) > 10
    for path in sorted(listed | set(own)):
        assert is_llm(path) is is_chat_generator(path), path
    assert is_llm("haystack.components.generators.chat.openai.OpenAIChatGenerator")


def test_classes_listed_with_no_role_play_none_by_their_class() -> None:
    from ragship.spec.roles import NO_ROLE, Role, component_class, role_classes

    for path in NO_ROLE:
        cls = component_class(path)
        assert cls is not None, path
        for role in Role:
            assert not issubclass(cls, role_classes(role)), (path, role)


@pytest.mark.parametrize(
    ("env", "generator", "services"),
    [
        ({"RAGSHIP_DEVICE": "cpu"}, "extractive", set()),  # make run on a CPU host: the API alone
        ({"RAGSHIP_DEVICE": "cpu", "RAGSHIP_SERVING__QUERY_MODELS": "service"}, "extractive", {"ragship-embedder"}),
        ({"RAGSHIP_DEVICE": "cpu"}, "openai", {"ragship-generator"}),
        (
            {"RAGSHIP_SERVING__EMBEDDER_URL": "http://e:3000", "RAGSHIP_SERVING__GENERATOR_URL": "http://g:3000"},
            "openai",
            set(),  # deployed apart (the chart): both are called at their URLs, none is started here
        ),
    ],
)
def test_the_supervisor_starts_only_the_services_a_request_can_reach(
    monkeypatch: pytest.MonkeyPatch, tmp_path, env: dict[str, str], generator: str, services: set[str]
) -> None:
    from ragship.serving.common import spec_and_origin
    from ragship.settings import get_settings

    spec = default_spec(generator=generator) if generator != "extractive" else default_spec()
    monkeypatch.setenv("RAGSHIP_SERVING__SPEC", str(spec.save(tmp_path / "spec.yaml")))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    spec_and_origin.cache_clear()
    monkeypatch.delitem(sys.modules, "ragship.serving.supervisor_view", raising=False)
    try:
        view = importlib.import_module("ragship.serving.supervisor_view")
        started = {name for name, svc in view.RAG.all_services(exclude_urls=True).items() if name != "ragship"}
        assert started == services
        assert view.RAG.name == "ragship" and view.RAG.config["workers"] == get_settings().serving.workers
    finally:
        get_settings.cache_clear()
        spec_and_origin.cache_clear()
