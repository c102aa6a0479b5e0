"""The chart's access values: the keys file and the JWKS come from existing Secrets, mounted as directories."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from chart_helpers import container, one, pod_spec

pytestmark = pytest.mark.chart

Render = Callable[..., list[dict[str, Any]]]


def test_keys_file_and_jwks_come_from_existing_secrets(render: Render) -> None:
    values = {
        "access": {
            "keys": {"existingSecret": "ragship-keys", "key": "keys.json", "reloadMs": 500},
            "oidc": {
                "issuer": "https://idp.example.com",
                "audience": "ragship",
                "jwks": {"existingSecret": "idp-jwks", "key": "jwks.json"},
                "groupsClaim": "roles",
            },
            "default": "deny",
            "rules": {"reports/finance/*": ["finance"]},
        }
    }
    objects = render(values=values)
    data = one(objects, "ConfigMap", "rel-config")["data"]
    assert data["RAGSHIP_SERVING__KEYS_FILE"] == "/etc/ragship/keys/keys.json"
    assert data["RAGSHIP_SERVING__KEYS_RELOAD_MS"] == "500"
    assert data["RAGSHIP_AUTH__ISSUER"] == "https://idp.example.com"
    assert data["RAGSHIP_AUTH__JWKS_FILE"] == "/etc/ragship/jwks/jwks.json"
    assert data["RAGSHIP_AUTH__GROUPS_CLAIM"] == "roles"
    assert data["RAGSHIP_ACCESS__DEFAULT"] == "deny"
    assert json.loads(data["RAGSHIP_ACCESS__RULES"]) == {"reports/finance/*": ["finance"]}
    api = one(objects, "Deployment", "rel-api")
    volumes = {v["name"]: v for v in pod_spec(api)["volumes"]}
    assert volumes["access-keys"]["secret"]["secretName"] == "ragship-keys"
    assert volumes["oidc-jwks"]["secret"]["secretName"] == "idp-jwks"
    mounts = {m["name"]: m for m in container(api)["volumeMounts"]}
    # no subPath: kubelet updates a directory mount when the Secret changes, so revocations reach the pod
    assert mounts["access-keys"] == {"name": "access-keys", "mountPath": "/etc/ragship/keys", "readOnly": True}
    # no secret value ever lands in the ConfigMap
    assert "keys.json" not in json.dumps({k: v for k, v in data.items() if "KEYS_FILE" not in k})


def test_without_access_values_nothing_is_mounted_and_oidc_is_off(render: Render) -> None:
    objects = render()
    data = one(objects, "ConfigMap", "rel-config")["data"]
    assert "RAGSHIP_SERVING__KEYS_FILE" not in data and "RAGSHIP_AUTH__ISSUER" not in data
    assert data["RAGSHIP_ACCESS__DEFAULT"] == "public"
    names = {v["name"] for v in pod_spec(one(objects, "Deployment", "rel-api"))["volumes"]}
    assert not names & {"access-keys", "oidc-jwks"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"access": {"default": "open"}}, "access.default: access.default must be one of the following"),
        ({"access": {"keys": {"secret": "x"}}}, "access.keys: Additional property secret is not allowed"),
        ({"access": {"rules": {"a/*": "finance"}}}, "access.rules.a/*: Invalid type. Expected: array"),
    ],
    ids=["default", "unknown-key", "rule-not-a-list"],
)
def test_helm_refuses_wrong_access_values(values: dict[str, Any], message: str, helm_template: Any) -> None:
    result = helm_template(values=values)
    assert result.returncode != 0 and message in result.output, result.output
