"""Generation by an OpenAI-compatible server: an external endpoint, or an inference server in the release."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from chart_helpers import NAMESPACE, Result, container, find, one, pod_spec

pytestmark = pytest.mark.chart

Render = Callable[..., list[dict[str, Any]]]


def config(objects: list[dict[str, Any]]) -> dict[str, str]:
    return one(objects, "ConfigMap", "rel-config")["data"]


def env_refs(workload: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container(workload).get("env", []) if "valueFrom" in e}


def test_by_default_the_spec_alone_names_the_endpoint(render: Render) -> None:
    objects = render()
    assert not find(objects, "Deployment", "rel-llm") and not find(objects, "Service", "rel-llm")
    assert not {"OPENAI_BASE_URL", "RAGSHIP_OPENAI__BASE_URL", "RAGSHIP_OPENAI__MODEL"} & set(config(objects))


def test_an_external_endpoint_is_a_url_and_a_key_reference(render: Render) -> None:
    objects = render("llm-external")
    data = config(objects)
    # the OpenAI client reads OPENAI_BASE_URL when the spec leaves api_base_url empty; ragship's own
    # settings (spec init's defaults, the answer evaluation's judge) read the RAGSHIP_ names
    assert data["OPENAI_BASE_URL"] == data["RAGSHIP_OPENAI__BASE_URL"] == "https://api.openai.com/v1"
    assert data["RAGSHIP_OPENAI__MODEL"] == "gpt-4o-mini"
    assert data["RAGSHIP_OPENAI__API_KEY_ENV"] == "OPENAI_API_KEY"
    key = {"name": "ragship-openai", "key": "api-key"}
    for name in ("rel-generator", "rel-api"):
        assert env_refs(one(objects, "Deployment", name))["OPENAI_API_KEY"] == key
    assert not find(objects, "Deployment", "rel-llm")


def test_an_external_endpoint_needs_its_url(helm_template: Callable[..., Result]) -> None:
    result = helm_template(values={"llm": {"endpoint": "external"}})
    assert result.returncode != 0
    assert "baseUrl" in result.output
    result = helm_template(values={"llm": {"endpoint": "external", "baseUrl": "api.openai.com"}})
    assert result.returncode != 0 and "baseUrl" in result.output  # a URL, with its scheme


def test_an_inference_server_in_the_release_serves_the_generator(render: Render) -> None:
    objects = render("llm-server")
    data = config(objects)
    assert data["OPENAI_BASE_URL"] == f"http://rel-llm.{NAMESPACE}.svc:8000/v1"
    assert data["RAGSHIP_OPENAI__MODEL"] == "qwen2.5-1.5b"

    deployment = one(objects, "Deployment", "rel-llm")
    main, spec = container(deployment), pod_spec(deployment)
    assert main["image"] == "vllm/vllm-openai:v0.11.0"
    assert main["args"] == [
        "--model",
        "Qwen/Qwen2.5-1.5B-Instruct",
        "--served-model-name",
        "qwen2.5-1.5b",
        "--max-model-len",
        "8192",
        "--port",
        "8000",
    ]
    assert main["resources"]["limits"] == {"memory": "24Gi", "nvidia.com/gpu": 1}
    # the server requires the key the Generator sends: both read the same Secret
    assert env_refs(deployment) == {"VLLM_API_KEY": {"name": "ragship-openai", "key": "api-key"}}
    generator = one(objects, "Deployment", "rel-generator")
    assert env_refs(generator)["OPENAI_API_KEY"] == env_refs(deployment)["VLLM_API_KEY"]
    assert main["envFrom"] == [{"secretRef": {"name": "ragship-hf"}}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert {"name": "cache", "persistentVolumeClaim": {"claimName": "ragship-llm-weights"}} in spec["volumes"]
    assert {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}} in spec["volumes"]
    assert {"name": "cache", "mountPath": "/root/.cache/huggingface"} in main["volumeMounts"]
    assert spec["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert spec["automountServiceAccountToken"] is False
    service = one(objects, "Service", "rel-llm")["spec"]
    assert service["ports"] == [{"name": "http", "port": 8000, "targetPort": "http"}]
    assert service["selector"]["app.kubernetes.io/component"] == "llm"
    # only the pods that run the Generator may call it
    [rule] = one(objects, "NetworkPolicy", "rel-llm")["spec"]["ingress"]
    assert rule["from"][0]["podSelector"]["matchExpressions"] == [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["api", "generator"]}
    ]


def test_a_cpu_inference_server_asks_for_no_gpu_and_caches_on_an_empty_dir(render: Render) -> None:
    objects = render(
        values={
            "llm": {
                "endpoint": "server",
                "server": {
                    "image": {"repository": "ghcr.io/ggml-org/llama.cpp", "tag": "server"},
                    "args": ["-hf", "ggml-org/SmolLM2-135M-Instruct-GGUF", "--host", "0.0.0.0"],
                    "port": 8080,
                    "gpus": 0,
                    "cachePath": "/root/.cache/llama.cpp",
                },
            }
        }
    )
    deployment = one(objects, "Deployment", "rel-llm")
    main = container(deployment)
    assert "nvidia.com/gpu" not in main["resources"].get("limits", {})
    assert main["args"][-2:] == ["--port", "8080"]
    assert {"name": "cache", "emptyDir": {"sizeLimit": "50Gi"}} in pod_spec(deployment)["volumes"]
    assert "env" not in main  # no key asked for: apiKeyEnv is empty
    assert config(objects)["OPENAI_BASE_URL"] == f"http://rel-llm.{NAMESPACE}.svc:8080/v1"
