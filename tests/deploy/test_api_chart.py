"""The chart's dm-api objects (helm/templates/api-*.yaml), rendered with the real Helm v4 library
and checked against the Kubernetes schemas like the rest of the chart."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import helm_python
import pytest

from conftest import CHART, NAMESPACE, kube_versions, render, render_error

API = "data-manager-api"
API_ON = {"schedulers": {"enabled": True}, "api": {"enabled": True}}
API_EVERYTHING = {
    "schedulers": {"enabled": True},
    "networkPolicy": {"enabled": True},
    "api": {
        "enabled": True,
        "ingress": {"enabled": True, "className": "nginx", "host": "dm.example.com"},
        "networkPolicy": {"ingressNamespaces": ["ingress-nginx"]},
    },
}


def test_api_is_off_by_default():
    assert not [o for o in render({}).objects if o["metadata"]["name"].startswith(API)]


def test_api_deployment_runs_two_stateless_replicas_of_dm_api_from_the_scheduler_image():
    d = render(API_ON).get("Deployment", API)
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = d["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod
    [c] = pod["containers"]
    assert c["command"] == ["/usr/local/bin/dm-api"]
    assert c["image"].startswith("ghcr.io/petrosa/data-manager-scheduler:")
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/health/liveness", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/health/readiness", "port": "http"}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["runAsNonRoot"] is True
    assert set(c["resources"]) == {"requests", "limits"}
    [env] = c["env"]
    assert env["name"] == "MONGODB_URL"
    assert env["valueFrom"]["secretKeyRef"] == {
        "name": "petrosa-sensitive-credentials", "key": "mongodb-connection-string",
    }
    annotations = d["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "8000"
    config = render(API_ON).get("ConfigMap", API)["data"]
    assert config["API_PORT"] == "8000"
    assert not any("URL" in k or "URI" in k for k in config)


def test_api_has_a_service_a_pdb_and_no_ingress_unless_asked():
    r = render(API_ON)
    svc = r.get("Service", API)
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    assert r.get("PodDisruptionBudget", API)["spec"]["maxUnavailable"] == 1
    assert not r.of_kind("Ingress")
    one = render({"api": {"enabled": True, "replicaCount": 1}})
    assert not [p for p in one.of_kind("PodDisruptionBudget") if p["metadata"]["name"] == API]


def test_api_ingress_and_network_policy():
    r = render(API_EVERYTHING)
    ing = r.get("Ingress", API)
    assert ing["spec"]["ingressClassName"] == "nginx"
    rule = ing["spec"]["rules"][0]
    assert rule["host"] == "dm.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": API, "port": {"name": "http"}}
    np = r.get("NetworkPolicy", API)
    sources = np["spec"]["ingress"][0]["from"]
    namespaces = {s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for s in sources if "namespaceSelector" in s}
    assert namespaces == {"ingress-nginx", "monitoring"}
    egress_ports = sorted(p["port"] for rule in np["spec"]["egress"] for p in rule["ports"])
    assert egress_ports == [53, 53, 27017]


@pytest.mark.parametrize("bad", [
    {"api": {"enabled": True, "replicaCount": 0}},
    {"api": {"enabled": True, "extraConfig": {"MONGODB_URL": "mongodb://u:p@h"}}},
    {"api": {"enabled": True, "ingress": {"enabled": True, "host": "Not A Host"}}},
    {"api": {"enabled": True, "shutdownGraceSeconds": 30, "terminationGracePeriodSeconds": 30}},
])
def test_bad_api_values_are_rejected(bad):
    assert render_error(bad)


@pytest.mark.parametrize("kube_version", kube_versions())
def test_api_manifests_pass_kubernetes_validate_strict(kube_version, tmp_path):
    rendered = render(API_EVERYTHING)
    paths = []
    for template, text in rendered.manifests().items():
        if "/api-" in template:
            path = tmp_path / template.replace("/", "_")
            path.write_text(text)
            paths.append(str(path))
    assert len(paths) == 6, paths
    cli = Path(sys.executable).parent / "kubernetes-validate"
    result = subprocess.run([str(cli), "--strict", "-k", kube_version, *paths], capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert len(re.findall(r"passed for resource (\S+)", output)) == 6, output


def test_api_values_lint_strictly():
    report = helm_python.lint(
        CHART, API_EVERYTHING, strict=True, namespace=NAMESPACE, kube_version=f"v{kube_versions()[-1]}",
    )
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
