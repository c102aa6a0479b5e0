"""What the rendered chart does with its values: names, scaling, GPUs, the queue trigger, secrets, probes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from chart_helpers import NAMESPACE, REPO, Result, container, find, one, pod_spec

pytestmark = pytest.mark.chart

Render = Callable[..., list[dict[str, Any]]]


def config(objects: list[dict[str, Any]]) -> dict[str, str]:
    return one(objects, "ConfigMap", "rel-config")["data"]


def test_object_names_are_the_release_and_the_component(render: Render) -> None:
    # `make test-cluster` and the docs rely on these names
    objects = render()
    assert {o["metadata"]["name"] for o in find(objects, "Deployment")} == {
        "rel-api",
        "rel-embedder",
        "rel-generator",
        "rel-worker",
    }
    assert [o["metadata"]["name"] for o in find(objects, "ScaledObject")] == ["rel-worker"]
    assert {o["metadata"]["name"] for o in find(objects, "HorizontalPodAutoscaler")} == {
        "rel-api",
        "rel-embedder",
        "rel-generator",
    }
    assert all(o["metadata"]["namespace"] == NAMESPACE for o in objects)


def test_hpa_targets_and_bounds_come_from_values(render: Render) -> None:
    objects = render(
        values={"api": {"hpa": {"minReplicas": 3, "maxReplicas": 7, "targetCPUUtilizationPercentage": 55}}}
    )
    hpa = one(objects, "HorizontalPodAutoscaler", "rel-api")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "rel-api"}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 7)
    assert hpa["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 55}}}
    ]
    # the HPA owns the replica count: the Deployment leaves it out so an upgrade does not reset it
    assert "replicas" not in one(objects, "Deployment", "rel-api")["spec"]


def test_in_flight_requests_add_a_pods_metric(render: Render) -> None:
    metrics = one(render("monitoring"), "HorizontalPodAutoscaler", "rel-api")["spec"]["metrics"]
    assert metrics[1] == {
        "type": "Pods",
        "pods": {
            "metric": {"name": "bentoml_service_request_in_progress"},
            "target": {"type": "AverageValue", "averageValue": "12"},
        },
    }


def test_gpu_values_put_the_model_services_on_gpu_nodes_and_not_the_api(render: Render) -> None:
    objects = render("gpu")
    for name in ("rel-embedder", "rel-generator"):
        deployment = one(objects, "Deployment", name)
        assert container(deployment)["resources"]["limits"]["nvidia.com/gpu"] == 1
        spec = pod_spec(deployment)
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        assert spec["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert "nodeAffinity" in pod_spec(one(objects, "Deployment", "rel-generator"))["affinity"]
    api = one(objects, "Deployment", "rel-api")
    assert "nvidia.com/gpu" not in json.dumps(api) and "tolerations" not in pod_spec(api)


def test_the_api_reaches_embedder_and_generator_by_service_url(render: Render) -> None:
    objects = render()
    data = config(objects)
    assert data["RAGSHIP_SERVING__EMBEDDER_URL"] == f"http://rel-embedder.{NAMESPACE}.svc:3000"
    assert data["RAGSHIP_WORKER__EMBEDDER_URL"] == data["RAGSHIP_SERVING__EMBEDDER_URL"]
    assert data["RAGSHIP_SERVING__GENERATOR_URL"] == f"http://rel-generator.{NAMESPACE}.svc:3000"
    service = one(objects, "Service", "rel-embedder")["spec"]
    assert service["ports"] == [{"name": "http", "port": 3000, "targetPort": "http"}]
    assert service["selector"]["app.kubernetes.io/component"] == "embedder"
    # each pod serves its own BentoML service
    assert container(one(objects, "Deployment", "rel-embedder"))["args"][:3] == [
        "bentoml",
        "serve",
        "ragship.serving.embedder:Embedder",
    ]


def test_a_model_service_not_deployed_apart_runs_beside_the_api(render: Render) -> None:
    objects = render(values={"generator": {"enabled": False}})
    assert not find(objects, "Deployment", "rel-generator") and not find(objects, "Service", "rel-generator")
    assert "RAGSHIP_SERVING__GENERATOR_URL" not in config(objects)


def test_probes_use_the_health_routes_bentoml_serves(render: Render) -> None:
    import inspect

    from bentoml._internal.server.base_app import BaseAppFactory

    # the installed BentoML's system routes (/livez and /healthz: process up; /readyz: __is_ready__)
    routes = set(re.findall(r'"(/[a-z]+)"', inspect.getsource(BaseAppFactory.get_system_routes)))
    assert {"/healthz", "/livez", "/readyz"} <= routes
    api = container(one(render(), "Deployment", "rel-api"))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert api[probe]["httpGet"]["path"] in routes
        assert api[probe]["httpGet"]["port"] == "http"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_keda_scales_workers_on_the_redis_list(render: Render) -> None:
    objects = render("es-api-key", values={"worker": {"keda": {"maxReplicaCount": 25, "listLength": 3}}})
    scaled = one(objects, "ScaledObject", "rel-worker")["spec"]
    assert scaled["scaleTargetRef"] == {"name": "rel-worker"}
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (0, 25)
    assert (scaled["pollingInterval"], scaled["cooldownPeriod"]) == (15, 300)
    [trigger] = scaled["triggers"]
    assert trigger["type"] == "redis"
    # the list Dramatiq keeps the waiting jobs in: <queue.namespace>:<queue.name>
    assert trigger["metadata"] == {
        "address": "redis.internal.example.com:6380",
        "databaseIndex": "2",
        "enableTLS": "true",
        "listName": "ragship:indexing",
        "listLength": "3",
        "activationListLength": "0",
    }
    assert trigger["authenticationRef"] == {"name": "rel-worker"}
    auth = one(objects, "TriggerAuthentication", "rel-worker")["spec"]
    assert auth["secretTargetRef"] == [{"parameter": "password", "name": "ragship-redis", "key": "password"}]
    # under KEDA the Deployment leaves the replica count to the ScaledObject
    assert "replicas" not in one(objects, "Deployment", "rel-worker")["spec"]


def test_the_list_name_follows_the_queue_settings(render: Render) -> None:
    objects = render(values={"queue": {"namespace": "prod", "name": "bulk"}})
    [trigger] = one(objects, "ScaledObject", "rel-worker")["spec"]["triggers"]
    assert trigger["metadata"]["listName"] == "prod:bulk"
    assert (config(objects)["RAGSHIP_QUEUE__NAMESPACE"], config(objects)["RAGSHIP_QUEUE__NAME"]) == ("prod", "bulk")
    # no password Secret named: no TriggerAuthentication to point at
    assert not find(objects, "TriggerAuthentication") and "authenticationRef" not in trigger


def test_keda_off_renders_no_scaled_object_and_a_fixed_worker_count(render: Render) -> None:
    objects = render("keda-off")
    assert not find(objects, "ScaledObject") and not find(objects, "TriggerAuthentication")
    assert one(objects, "Deployment", "rel-worker")["spec"]["replicas"] == 3
    assert one(objects, "Deployment", "rel-api")["spec"]["replicas"] == 3
    assert not find(objects, "HorizontalPodAutoscaler", "rel-api")


def test_rabbitmq_gets_its_own_trigger_with_the_url_from_a_secret(render: Render) -> None:
    objects = render("rabbitmq")
    [trigger] = one(objects, "ScaledObject", "rel-worker")["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq" and trigger["metadata"]["queueName"] == "indexing"
    auth = one(objects, "TriggerAuthentication", "rel-worker")["spec"]
    assert auth["secretTargetRef"] == [{"parameter": "host", "name": "ragship-rabbitmq", "key": "host"}]
    # ragship's own processes take the AMQP URL from the same Secret and keep job state in Redis.
    config = one(objects, "ConfigMap", "rel-config")["data"]
    assert "RAGSHIP_QUEUE__URL" not in config and config["RAGSHIP_QUEUE__STATE_URL"].startswith("redis")
    for name in ("rel-api", "rel-worker"):
        url = next(e for e in container(one(objects, "Deployment", name))["env"] if e["name"] == "RAGSHIP_QUEUE__URL")
        assert url["valueFrom"]["secretKeyRef"] == {"name": "ragship-rabbitmq", "key": "host"}


def test_worker_grace_period_covers_its_shutdown_timeout(render: Render) -> None:
    objects = render(values={"worker": {"shutdownTimeoutSeconds": 120}})
    worker = one(objects, "Deployment", "rel-worker")
    assert pod_spec(worker)["terminationGracePeriodSeconds"] == 150
    assert config(objects)["RAGSHIP_WORKER__SHUTDOWN_TIMEOUT_S"] == "120"
    assert container(worker)["args"] == ["python", "-m", "ragship.cli", "worker"]
    assert container(worker)["ports"] == [{"name": "metrics", "containerPort": 9191}]
    assert config(objects)["RAGSHIP_WORKER__METRICS_HOST"] == "0.0.0.0"
    assert container(worker)["image"] == "ragship-indexing:0.1.0"


SECRET_VALUE = "s3cr3t-value-never-rendered"


def test_secrets_are_referenced_never_inlined(render: Render, helm_template: Callable[..., Result]) -> None:
    objects = render("es-api-key")
    assert not find(objects, "Secret")
    env = {e["name"]: e for e in container(one(objects, "Deployment", "rel-api"))["env"]}
    refs = {name: e["valueFrom"]["secretKeyRef"] for name, e in env.items()}
    assert refs == {
        "RAGSHIP_ES__API_KEY": {"name": "ragship-es", "key": "api-key"},
        "RAGSHIP_QUEUE__PASSWORD": {"name": "ragship-redis", "key": "password"},
        "RAGSHIP_SERVING__API_KEY": {"name": "ragship-api", "key": "api-key"},
        "OPENAI_API_KEY": {"name": "ragship-openai", "key": "api-key"},
    }
    assert {"secretRef": {"name": "ragship-mlflow"}} in container(one(objects, "Deployment", "rel-api"))["envFrom"]
    # the chart has no place for a secret's value: trying to pass one fails, and it is never rendered
    for attempt in (
        {"elasticsearch": {"auth": {"apiKey": SECRET_VALUE}}},
        {"redis": {"password": SECRET_VALUE}},
        {"apiKey": {"value": SECRET_VALUE}},
    ):
        result = helm_template("es-api-key", values=attempt)
        assert result.returncode != 0 and "Additional property" in result.output
        assert SECRET_VALUE not in result.output


def test_every_workload_shares_the_config_map_and_runs_read_only_as_non_root(render: Render) -> None:
    objects = render("trial-redis")
    workloads = [o for o in objects if o["kind"] in {"Deployment", "CronJob"} and o["metadata"]["name"] != "rel-redis"]
    assert {o["metadata"]["name"] for o in workloads} == {
        "rel-api",
        "rel-embedder",
        "rel-generator",
        "rel-worker",
        "rel-reindex",
    }
    for workload in workloads:
        spec, main = pod_spec(workload), container(workload)
        assert {"configMapRef": {"name": "rel-config"}} in main["envFrom"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert main["securityContext"]["readOnlyRootFilesystem"] is True
        assert main["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}} in spec["volumes"]
    # writable state points into the emptyDir
    data = config(objects)
    assert all(data[k].startswith("/tmp/") for k in ("RAGSHIP_HOME", "BENTOML_HOME", "HF_HOME", "XDG_CACHE_HOME"))


def test_per_service_env_overrides_the_shared_config(render: Render) -> None:
    objects = render(values={"config": {"env": {"RAGSHIP_TOP_K": 8}}, "api": {"env": {"RAGSHIP_TOP_K": 3}}})
    assert config(objects)["RAGSHIP_TOP_K"] == "8"
    api_env = container(one(objects, "Deployment", "rel-api"))["env"]
    # env entries win over envFrom in Kubernetes: the API alone gets 3
    assert {"name": "RAGSHIP_TOP_K", "value": "3"} in api_env
    assert "env" not in container(one(objects, "Deployment", "rel-worker"))


def test_a_config_change_rolls_every_pod(render: Render) -> None:
    def checksums(values: dict[str, Any] | None) -> set[str]:
        objects = render(values=values)
        return {
            o["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for o in find(objects, "Deployment")
            if o["metadata"]["name"] != "rel-redis"
        }

    before, after = checksums(None), checksums({"config": {"env": {"RAGSHIP_TOP_K": "9"}}})
    assert len(before) == 1 and len(after) == 1 and before != after


def test_the_spec_comes_from_the_registry_or_a_mounted_config_map(render: Render) -> None:
    data = config(render(values={"mlflow": {"trackingUri": "http://mlflow.mlops:5000"}}))
    assert data["RAGSHIP_SERVING__SPEC"] == "models:/ragship@champion"
    assert data["RAGSHIP_MLFLOW__TRACKING_URI"] == "http://mlflow.mlops:5000"
    objects = render("trial-redis")
    assert config(objects)["RAGSHIP_SERVING__SPEC"] == "/etc/ragship/spec/spec.yaml"
    assert yaml.safe_load(one(objects, "ConfigMap", "rel-spec")["data"]["spec.yaml"])["name"] == "trial"
    api = one(objects, "Deployment", "rel-api")
    assert {"name": "spec", "configMap": {"name": "rel-spec"}} in pod_spec(api)["volumes"]


def test_trial_redis_is_the_broker_when_enabled(render: Render) -> None:
    objects = render("trial-redis")
    redis = one(objects, "Deployment", "rel-redis")
    assert "noeviction" in container(redis)["args"] and "--requirepass" in container(redis)["args"]
    assert one(objects, "Service", "rel-redis")["spec"]["ports"][0]["port"] == 6379
    assert config(objects)["RAGSHIP_QUEUE__URL"] == f"redis://rel-redis.{NAMESPACE}.svc:6379/0"
    [trigger] = one(objects, "ScaledObject", "rel-worker")["spec"]["triggers"]
    assert trigger["metadata"]["address"] == f"rel-redis.{NAMESPACE}.svc:6379"
    # by default: the external, managed Redis and no Redis in the release
    assert not find(render(), "Deployment", "rel-redis")


def test_elasticsearch_basic_auth_and_private_ca(render: Render) -> None:
    objects = render("trial-redis")
    api = container(one(objects, "Deployment", "rel-api"))
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in api["env"] if "valueFrom" in e}
    assert refs["RAGSHIP_ES__USERNAME"] == {"name": "ragship-es-elastic-user", "key": "username"}
    assert refs["RAGSHIP_ES__PASSWORD"] == {"name": "ragship-es-elastic-user", "key": "elastic"}
    assert config(objects)["RAGSHIP_ES__CA_CERTS"] == "/etc/ragship/es-ca/ca.crt"
    assert config(objects)["RAGSHIP_STORE"] == "https://ragship-es-http.search.svc:9200"


def test_reindex_cronjob_never_overlaps_and_runs_the_notebook(render: Render) -> None:
    objects = render("trial-redis", values={"reindex": {"schedule": "0 3 * * *"}})
    cron = one(objects, "CronJob", "rel-reindex")
    assert cron["spec"]["schedule"] == "0 3 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert (cron["spec"]["successfulJobsHistoryLimit"], cron["spec"]["failedJobsHistoryLimit"]) == (3, 3)
    args = container(cron)["args"]
    assert args[:5] == ["python", "-m", "ragship.cli", "reindex", "--json"]
    assert "sources=/data/docs" in args and "mode=incremental" in args
    # the notebook defaults to RAGSHIP_SPEC; the CronJob passes the spec the services serve
    assert args[args.index("spec=/etc/ragship/spec/spec.yaml") - 1] == "-p"
    assert {"name": "sources", "mountPath": "/data", "readOnly": True} in container(cron)["volumeMounts"]
    assert pod_spec(cron)["restartPolicy"] == "Never"
    # the notebook ships in the indexing bento the CronJob runs
    bentofile = yaml.safe_load((REPO / "bentos" / "indexing" / "bentofile.yaml").read_text())
    assert "notebooks/reindex.ipynb" in bentofile["include"]


def test_api_pods_spread_and_drain_one_at_a_time(render: Render) -> None:
    objects = render()
    pdb = one(objects, "PodDisruptionBudget", "rel-api")["spec"]
    assert pdb["maxUnavailable"] == 1 and pdb["selector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    spread = pod_spec(one(objects, "Deployment", "rel-api"))["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in spread] == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    assert all(c["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api" for c in spread)


def test_monitoring_scrapes_every_metrics_port_and_the_dashboard_uses_real_metrics(render: Render) -> None:
    objects = render("monitoring")
    monitor = one(objects, "ServiceMonitor", "rel")["spec"]
    assert {e["port"] for e in monitor["endpoints"]} == {"http", "metrics"}
    assert one(objects, "Service", "rel-worker")["spec"]["ports"][0]["name"] == "metrics"
    dashboard = one(objects, "ConfigMap", "rel-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    exprs = " ".join(t["expr"] for p in json.loads(dashboard["data"]["ragship.json"])["panels"] for t in p["targets"])
    used = set(re.findall(r"\b(ragship_[a-z_]+|bentoml_service_[a-z_]+)", exprs))
    source = " ".join(p.read_text() for p in (REPO / "src" / "ragship").rglob("*.py"))
    declared = set(re.findall(r'"(ragship_[a-z_]+)"', source))
    # BentoML's own (namespace bentoml_service; a counter's _total is added when exported)
    bentoml = {"request", "request_duration_seconds", "request_in_progress", "adaptive_batch_size"}
    for metric in used:
        base = re.sub(r"_(total|bucket|sum|count)$", "", metric)
        assert base in declared or base.removeprefix("bentoml_service_") in bentoml, metric
    assert {"ragship_queue_length", "ragship_worker_documents_total"} <= used
    assert not find(render(), "ServiceMonitor")


def test_network_policies_let_only_the_api_and_workers_call_the_model_services(render: Render) -> None:
    objects = render("monitoring")
    embedder = one(objects, "NetworkPolicy", "rel-embedder")["spec"]
    [selector] = embedder["ingress"][0]["from"]
    assert selector["podSelector"]["matchExpressions"] == [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["api", "worker"]}
    ]
    api = one(objects, "NetworkPolicy", "rel-api")["spec"]
    assert api["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
