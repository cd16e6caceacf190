"""The data-manager chart, rendered with the real Helm v4 library: lint, Kubernetes schema
validation, and the properties issue 6 asks for, asserted on the rendered objects."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import helm_python
import pytest

from conftest import (
    CHART,
    DEFAULTS,
    EVERYTHING_ON,
    NAMESPACE,
    REPO,
    SCHEDULERS_ON,
    VALUES_DIR,
    chart_defaults,
    env_vars_in_crates,
    kube_versions,
    load_values_file,
    metric_names_in_crates,
    pod_specs,
    render,
    render_error,
)

AUDITOR_ONLY = {"schedulers": {"enabled": True, "analytics": {"enabled": False}}}
ANALYTICS_ONLY = {"schedulers": {"enabled": True, "auditor": {"enabled": False}}}
VALUE_SETS = {
    "defaults": DEFAULTS,
    "schedulers": SCHEDULERS_ON,
    "everything": EVERYTHING_ON,
    "auditor-only": AUDITOR_ONLY,
    "analytics-only": ANALYTICS_ONLY,
    "production": load_values_file("production.yaml"),
    "no-autoscaling": {"consumer": {"autoscaling": {"enabled": False}}},
}
# Kinds that are CRDs (Prometheus operator): kubernetes-validate has no schema for them.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
CONSUMER = "data-manager-consumer"
AUDITOR = "data-manager-auditor"
ANALYTICS = "data-manager-analytics"
SCHEDULER = "data-manager-scheduler"


# === lint and Kubernetes schema validation ===


@pytest.mark.parametrize("values_name", ["defaults", "everything", "production"])
def test_helm_lint_strict_reports_no_warning_or_error(values_name):
    report = helm_python.lint(
        CHART, VALUE_SETS[values_name], strict=True, namespace=NAMESPACE,
        kube_version=f"v{kube_versions()[-1]}",
    )
    assert report["errors"] == []
    serious = [m for m in report["messages"] if m["severity"] >= 2]
    assert serious == []


@pytest.mark.parametrize("kube_version", kube_versions())
@pytest.mark.parametrize("values_name", sorted(VALUE_SETS))
def test_every_rendered_manifest_passes_kubernetes_validate_strict(values_name, kube_version, tmp_path):
    rendered = render(VALUE_SETS[values_name])
    paths = []
    for template, text in rendered.manifests().items():
        path = tmp_path / template.replace("/", "_")
        path.write_text(text)
        paths.append(str(path))
    cli = Path(sys.executable).parent / "kubernetes-validate"
    result = subprocess.run(
        [str(cli), "--strict", "-k", kube_version, *paths], capture_output=True, text=True
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    passed = re.findall(r"passed for resource (\S+)", output)
    no_schema = set(re.findall(r"Couldn't find schema for kind (\S+)", output))
    assert len(passed) == len([o for o in rendered.objects if o["kind"] not in CRD_KINDS]), output
    assert no_schema <= CRD_KINDS, output


def test_chart_is_data_manager_at_helm_with_a_declared_kube_version():
    assert kube_versions() == ["1.29.0", "1.34.0"]
    assert render(DEFAULTS).files and all(p.startswith("data-manager/") for p in render(DEFAULTS).files)


# === which objects are rendered ===


def test_defaults_render_the_consumer_and_no_scheduler_object():
    assert render(DEFAULTS).names() == {
        ("ConfigMap", CONSUMER),
        ("ServiceAccount", CONSUMER),
        ("Deployment", CONSUMER),
        ("Service", CONSUMER),
        ("HorizontalPodAutoscaler", CONSUMER),
        ("PodDisruptionBudget", CONSUMER),
    }


def test_schedulers_flag_renders_both_schedulers_with_their_rbac():
    names = render(SCHEDULERS_ON).names()
    scheduler_objects = names - render(DEFAULTS).names()
    assert scheduler_objects == {
        ("ConfigMap", AUDITOR), ("Deployment", AUDITOR), ("Service", AUDITOR),
        ("PodDisruptionBudget", AUDITOR),
        ("ConfigMap", ANALYTICS), ("Deployment", ANALYTICS), ("Service", ANALYTICS),
        ("PodDisruptionBudget", ANALYTICS),
        ("ServiceAccount", SCHEDULER), ("Role", SCHEDULER), ("RoleBinding", SCHEDULER),
    }
    for name in (AUDITOR, ANALYTICS):
        assert render(SCHEDULERS_ON).get("Deployment", name)["spec"]["replicas"] == 2


@pytest.mark.parametrize(
    "values, present, absent",
    [(AUDITOR_ONLY, AUDITOR, ANALYTICS), (ANALYTICS_ONLY, ANALYTICS, AUDITOR)],
    ids=["auditor-only", "analytics-only"],
)
def test_each_scheduler_can_be_enabled_alone(values, present, absent):
    rendered = render(values)
    names = {n for _, n in rendered.names()}
    assert present in names and absent not in names
    role = rendered.get("Role", SCHEDULER)
    assert role["rules"][0]["resourceNames"] == [present]


def test_scheduler_sub_flags_do_nothing_without_the_main_flag():
    values = {"schedulers": {"enabled": False, "auditor": {"enabled": True}, "analytics": {"enabled": True}}}
    assert render(values).names() == render(DEFAULTS).names()


def test_both_sub_flags_off_renders_no_scheduler_object():
    values = {"schedulers": {"enabled": True, "auditor": {"enabled": False}, "analytics": {"enabled": False}}}
    assert render(values).names() == render(DEFAULTS).names()


# === RBAC ===


@pytest.mark.parametrize("values_name", ["schedulers", "everything", "production"])
def test_role_grants_exactly_get_create_update_on_leases(values_name):
    role = render(VALUE_SETS[values_name]).get("Role", SCHEDULER)
    assert role["metadata"].get("namespace") is None  # namespaced: the release namespace
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [AUDITOR, ANALYTICS],
            "verbs": ["get", "update"],
        },
        # RBAC cannot restrict create by name.
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]


def test_role_follows_custom_lease_names():
    values = {"schedulers": {"enabled": True, "auditor": {"leaseName": "dm-audit-lock"}}}
    rendered = render(values)
    assert rendered.get("Role", SCHEDULER)["rules"][0]["resourceNames"] == ["dm-audit-lock", ANALYTICS]
    assert rendered.get("ConfigMap", AUDITOR)["data"]["LEASE_NAME"] == "dm-audit-lock"


def test_no_cluster_wide_rbac_is_rendered():
    kinds = {o["kind"] for o in render(EVERYTHING_ON).objects}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}


def test_role_binding_binds_the_role_to_the_schedulers_service_account():
    rendered = render(SCHEDULERS_ON)
    binding = rendered.get("RoleBinding", SCHEDULER)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SCHEDULER}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SCHEDULER, "namespace": NAMESPACE}]
    specs = pod_specs(rendered)
    for name in (AUDITOR, ANALYTICS):
        assert specs[name]["serviceAccountName"] == SCHEDULER
        assert specs[name]["automountServiceAccountToken"] is True


def test_consumer_has_no_api_access():
    rendered = render(EVERYTHING_ON)
    spec = pod_specs(rendered)[CONSUMER]
    assert spec["serviceAccountName"] == CONSUMER
    assert spec["automountServiceAccountToken"] is False
    assert rendered.get("ServiceAccount", CONSUMER)["automountServiceAccountToken"] is False
    bound = [s["name"] for b in rendered.of_kind("RoleBinding") for s in b["subjects"]]
    assert CONSUMER not in bound


# === HPA, replicas, PDB ===


def test_hpa_targets_only_the_consumer_with_the_production_behaviour():
    rendered = render(EVERYTHING_ON)
    [hpa] = rendered.of_kind("HorizontalPodAutoscaler")
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": CONSUMER}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 10)
    assert spec["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
    ]
    assert spec["behavior"] == {
        "scaleDown": {
            "stabilizationWindowSeconds": 300,
            "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
        },
        "scaleUp": {
            "stabilizationWindowSeconds": 60,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 30},
                {"type": "Pods", "value": 2, "periodSeconds": 30},
            ],
        },
    }


def test_hpa_owns_the_consumer_replica_count_and_without_it_the_deployment_has_three():
    assert "replicas" not in render(DEFAULTS).get("Deployment", CONSUMER)["spec"]
    fixed = render(VALUE_SETS["no-autoscaling"])
    assert fixed.of_kind("HorizontalPodAutoscaler") == []
    assert fixed.get("Deployment", CONSUMER)["spec"]["replicas"] == 3


def test_memory_target_is_added_only_when_set():
    values = {"consumer": {"autoscaling": {"targetMemoryUtilizationPercentage": 80}}}
    metrics = render(values).get("HorizontalPodAutoscaler", CONSUMER)["spec"]["metrics"]
    assert [m["resource"]["name"] for m in metrics] == ["cpu", "memory"]
    assert metrics[1]["resource"]["target"]["averageUtilization"] == 80


def test_pod_disruption_budgets_select_their_own_deployment():
    rendered = render(SCHEDULERS_ON)
    for name in (CONSUMER, AUDITOR, ANALYTICS):
        pdb = rendered.get("PodDisruptionBudget", name)
        deployment = rendered.get("Deployment", name)
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


def test_deployment_selectors_do_not_overlap():
    rendered = render(SCHEDULERS_ON)
    components = [d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] for d in rendered.of_kind("Deployment")]
    assert sorted(components) == ["analytics", "auditor", "consumer"]


def test_rolling_updates_never_drop_below_the_replica_count():
    for deployment in render(SCHEDULERS_ON).of_kind("Deployment"):
        assert deployment["spec"]["strategy"] == {
            "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}
        }


# === containers: security, resources, probes, images ===


@pytest.mark.parametrize("values_name", sorted(VALUE_SETS))
def test_every_container_is_locked_down_non_root_with_resources(values_name):
    for name, spec in pod_specs(render(VALUE_SETS[values_name])).items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] == 65532 and pod["runAsGroup"] == 65532, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        containers = spec["containers"] + spec.get("initContainers", [])
        for c in containers:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, (name, c["name"])
            assert sc["readOnlyRootFilesystem"] is True, (name, c["name"])
            assert sc["allowPrivilegeEscalation"] is False, (name, c["name"])
            assert sc["privileged"] is False, (name, c["name"])
            assert sc["capabilities"] == {"drop": ["ALL"]}, (name, c["name"])
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, (name, c["name"])
            for bound in ("requests", "limits"):
                assert set(c["resources"][bound]) == {"cpu", "memory"}, (name, c["name"], bound)


def test_probes_use_the_health_endpoints_on_the_metrics_port():
    for name, spec in pod_specs(render(SCHEDULERS_ON)).items():
        [c] = spec["containers"]
        assert c["ports"] == [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}], name
        assert c["livenessProbe"]["httpGet"] == {"path": "/health/liveness", "port": "metrics"}, name
        assert c["readinessProbe"]["httpGet"] == {"path": "/health/readiness", "port": "metrics"}, name
        assert c["livenessProbe"]["failureThreshold"] == 3 and c["readinessProbe"]["periodSeconds"] == 10, name


def test_containers_run_the_right_binary_from_the_right_image():
    specs = pod_specs(render(SCHEDULERS_ON))
    commands = {n: (s["containers"][0]["image"], s["containers"][0]["command"], s["containers"][0].get("args")) for n, s in specs.items()}
    assert commands == {
        CONSUMER: ("ghcr.io/petrosa/data-manager-consumer:0.1.0", ["/usr/local/bin/dm-consumer"], None),
        AUDITOR: ("ghcr.io/petrosa/data-manager-scheduler:0.1.0", ["/usr/local/bin/dm-auditor"], ["run"]),
        ANALYTICS: ("ghcr.io/petrosa/data-manager-scheduler:0.1.0", ["/usr/local/bin/dm-analytics"], ["run"]),
    }


def test_image_digest_wins_over_the_tag():
    specs = pod_specs(render(load_values_file("production.yaml")))
    assert specs[AUDITOR]["containers"][0]["image"] == (
        "ghcr.io/petrosa/data-manager-scheduler@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )


def test_grace_periods_leave_time_to_drain():
    for name, spec in pod_specs(render(SCHEDULERS_ON)).items():
        config = render(SCHEDULERS_ON).get("ConfigMap", name)["data"]
        assert config["SHUTDOWN_GRACE"] == "20s", name
        assert spec["terminationGracePeriodSeconds"] == 30, name


# === configuration: ConfigMaps, env, secrets ===


def test_consumer_configmap_holds_its_non_secret_settings():
    assert render(DEFAULTS).get("ConfigMap", CONSUMER)["data"] == {
        "NATS_CONSUMER_SUBJECT": "binance.futures.websocket.data",
        "NATS_QUEUE_GROUP": "data-manager-consumer",
        "METRICS_PORT": "9090",
        "METRICS_HOST": "0.0.0.0",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "STATS_INTERVAL": "60s",
        "SHUTDOWN_GRACE": "20s",
        # Reserves the configured symbols' labels before junk symbols can take them.
        "SUPPORTED_PAIRS": "BTCUSDT,ETHUSDT,BNBUSDT,ADAUSDT,SOLUSDT",
    }


def test_scheduler_configmaps_hold_lease_names_timings_and_intervals():
    rendered = render(SCHEDULERS_ON)
    common = {
        "LEADER_ELECTION": "kubernetes",
        "LEASE_DURATION": "15s",
        "LEASE_RENEW_DEADLINE": "10s",
        "LEASE_RETRY_PERIOD": "2s",
        "SUPPORTED_PAIRS": "BTCUSDT,ETHUSDT,BNBUSDT,ADAUSDT,SOLUSDT",
        "METRICS_PORT": "9090",
        "METRICS_HOST": "0.0.0.0",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "SHUTDOWN_GRACE": "20s",
    }
    assert rendered.get("ConfigMap", AUDITOR)["data"] == {
        **common, "LEASE_NAME": AUDITOR, "ENABLE_AUDITOR": "true",
        "AUDIT_INTERVAL": "300", "AUDIT_TIMEFRAMES": "5m,15m,30m,1h,1d",
    }
    assert rendered.get("ConfigMap", ANALYTICS)["data"] == {
        **common, "LEASE_NAME": ANALYTICS, "ENABLE_ANALYTICS": "true", "ANALYTICS_INTERVAL": "900", "ANALYTICS_TIMEFRAMES": "1h,1d",
    }


def _crate_env_vars(*crates: str) -> set[str]:
    text = "\n".join(p.read_text() for c in crates for p in (REPO / "crates" / c / "src").rglob("*.rs"))
    return set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', text))


def test_every_configmap_key_is_a_variable_its_binary_reads():
    rendered = render(SCHEDULERS_ON)
    consumer_keys = set(rendered.get("ConfigMap", CONSUMER)["data"])
    assert consumer_keys <= _crate_env_vars("consumer", "runtime")
    auditor_keys = set(rendered.get("ConfigMap", AUDITOR)["data"])
    assert auditor_keys <= _crate_env_vars("auditor", "runtime", "leader", "store")
    analytics_reads = _crate_env_vars("analytics", "runtime", "leader", "store")
    analytics_keys = set(rendered.get("ConfigMap", ANALYTICS)["data"])
    assert analytics_keys <= analytics_reads


def test_scheduler_pods_get_identity_from_the_downward_api_and_urls_from_the_secret():
    for name, spec in pod_specs(render(SCHEDULERS_ON)).items():
        if name == CONSUMER:
            continue
        env = {e["name"]: e["valueFrom"] for e in spec["containers"][0]["env"]}
        # Only the auditor publishes data-quality events, so only it reads NATS_URL.
        nats = {"NATS_URL": {"configMapKeyRef": {"name": "petrosa-common-config", "key": "NATS_URL"}}}
        assert env == {
            "POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},
            "POD_NAMESPACE": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            "MYSQL_URI": {"secretKeyRef": {"name": "petrosa-sensitive-credentials", "key": "MYSQL_URI"}},
            "MONGODB_URL": {"secretKeyRef": {"name": "petrosa-sensitive-credentials", "key": "mongodb-connection-string"}},
        } | (nats if name.endswith("auditor") else {}), name
        assert spec["containers"][0]["envFrom"] == [{"configMapRef": {"name": name}}], name


def test_consumer_reads_nats_url_from_the_common_configmap():
    [container] = pod_specs(render(DEFAULTS))[CONSUMER]["containers"]
    assert container["env"] == [
        {"name": "NATS_URL", "valueFrom": {"configMapKeyRef": {"name": "petrosa-common-config", "key": "NATS_URL"}}}
    ]
    assert container["envFrom"] == [{"configMapRef": {"name": CONSUMER}}]


def test_secret_and_configmap_names_and_keys_are_overridable():
    values = {
        "schedulers": {"enabled": True},
        "externalConfig": {
            "credentialsSecret": {"name": "dm-creds", "mysqlUriKey": "mysql", "mongodbUrlKey": "mongo"},
            "commonConfigMap": {"name": "shared", "natsUrlKey": "nats"},
        },
    }
    specs = pod_specs(render(values))
    env = {e["name"]: e["valueFrom"] for e in specs[AUDITOR]["containers"][0]["env"]}
    assert env["MYSQL_URI"] == {"secretKeyRef": {"name": "dm-creds", "key": "mysql"}}
    assert env["MONGODB_URL"] == {"secretKeyRef": {"name": "dm-creds", "key": "mongo"}}
    assert specs[CONSUMER]["containers"][0]["env"][0]["valueFrom"] == {
        "configMapKeyRef": {"name": "shared", "key": "nats"}
    }


# Anything that looks like a connection string or a credential.
SECRET_LIKE = re.compile(r"(mysql(\+\w+)?|mongodb(\+srv)?|nats|tls)://|password|hunter2", re.IGNORECASE)


@pytest.mark.parametrize("values_name", sorted(VALUE_SETS))
def test_no_secret_value_is_rendered(values_name):
    rendered = render(VALUE_SETS[values_name])
    assert rendered.of_kind("Secret") == []
    for obj in rendered.objects:
        text = json.dumps(obj)
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].endswith("-dashboard"):
            text = json.dumps(obj["metadata"])  # PromQL, not configuration
        assert not SECRET_LIKE.search(text), (obj["kind"], obj["metadata"]["name"], SECRET_LIKE.search(text))
    for spec in pod_specs(rendered).values():
        for c in spec["containers"]:
            for e in c.get("env", []):
                if e["name"] in {"MYSQL_URI", "MONGODB_URL", "NATS_URL"}:
                    assert "value" not in e and "valueFrom" in e, e


def test_config_changes_roll_the_pods():
    before = render(SCHEDULERS_ON)
    after = render({"schedulers": {"enabled": True, "auditor": {"intervalSeconds": 600}}, "logging": {"level": "DEBUG"}})
    for name in (CONSUMER, AUDITOR):
        a = before.get("Deployment", name)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        b = after.get("Deployment", name)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        assert a != b, name
    unchanged = lambda r: r.get("Deployment", ANALYTICS)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert unchanged(before) != unchanged(after)  # LOG_LEVEL is shared
    assert unchanged(before) == unchanged(render({"schedulers": {"enabled": True, "auditor": {"intervalSeconds": 600}}}))


# === NetworkPolicy ===


def _egress_ports(policy: dict) -> set[tuple[str, int]]:
    return {(p["protocol"], p["port"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}


def test_network_policy_is_off_by_default():
    assert render(SCHEDULERS_ON).of_kind("NetworkPolicy") == []


def test_consumer_network_policy_allows_dns_and_nats_out_and_scrapes_in():
    policy = render(EVERYTHING_ON).get("NetworkPolicy", CONSUMER)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "consumer"
    assert _egress_ports(policy) == {("UDP", 53), ("TCP", 53), ("TCP", 4222)}
    nats_rule = policy["spec"]["egress"][1]
    assert nats_rule["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "nats"}}}]
    assert policy["spec"]["ingress"] == [{
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        "ports": [{"protocol": "TCP", "port": 9090}],
    }]


def test_scheduler_network_policy_adds_databases_and_the_api_server():
    rendered = render(load_values_file("production.yaml"))
    policy = rendered.get("NetworkPolicy", SCHEDULER)
    assert policy["spec"]["podSelector"]["matchExpressions"] == [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["auditor", "analytics"]}
    ]
    # 4222: the auditor's data-quality events on NATS.
    assert _egress_ports(policy) == {("UDP", 53), ("TCP", 53), ("TCP", 3306), ("TCP", 27017), ("TCP", 6443), ("TCP", 4222)}
    api_rule = policy["spec"]["egress"][3]
    assert api_rule == {"ports": [{"protocol": "TCP", "port": 6443}], "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]}
    # The consumer never gets API-server or database egress.
    assert _egress_ports(rendered.get("NetworkPolicy", CONSUMER)) == {("UDP", 53), ("TCP", 53), ("TCP", 4222)}


def test_scheduler_network_policy_defaults_to_both_api_server_ports_on_any_address():
    policy = render(EVERYTHING_ON).get("NetworkPolicy", SCHEDULER)
    assert policy["spec"]["egress"][3] == {"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}
    assert "networkPolicy.apiServer.cidrs is empty" in render(EVERYTHING_ON).notes


# === observability ===


def test_pods_carry_prometheus_scrape_annotations_by_default():
    for d in render(SCHEDULERS_ON).of_kind("Deployment"):
        annotations = d["spec"]["template"]["metadata"]["annotations"]
        assert {k: v for k, v in annotations.items() if k.startswith("prometheus.io/")} == {
            "prometheus.io/scrape": "true", "prometheus.io/port": "9090", "prometheus.io/path": "/metrics",
        }


def test_service_monitor_scrapes_the_metrics_port_of_every_service():
    rendered = render(EVERYTHING_ON)
    [monitor] = rendered.of_kind("ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = rendered.of_kind("Service")
    assert len(services) == 3
    for service in services:
        assert selector.items() <= service["metadata"]["labels"].items()
        assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def _alerts(rendered) -> dict[str, dict]:
    [rule] = rendered.of_kind("PrometheusRule")
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}


def test_prometheus_rule_has_the_issue_alerts():
    alerts = _alerts(render(EVERYTHING_ON))
    assert set(alerts) == {
        "DataManagerConsumerNoMessages",
        "DataManagerRejectRatioHigh",
        "DataManagerNatsDisconnected",
        "DataManagerAuditorNoLeader",
        "DataManagerAnalyticsNoLeader",
        "DataManagerAuditorMultipleLeaders",
        "DataManagerAnalyticsMultipleLeaders",
        "DataManagerAuditHighSeverityFindings",
        "DataManagerAuditorCycleStale",
        "DataManagerAnalyticsCycleStale",
        "DataManagerAuditorFenced",
        "DataManagerAnalyticsFenced",
    }
    assert alerts["DataManagerConsumerNoMessages"]["for"] == "5m"
    assert alerts["DataManagerConsumerNoMessages"]["expr"] == (
        '(sum(rate(data_manager_messages_received_total{namespace="petrosa-apps", '
        'pod=~"data-manager-consumer-[a-z0-9]+-[a-z0-9]+", job="data-manager-consumer"}[2m])) or vector(0)) == 0'
    )
    assert alerts["DataManagerAuditorNoLeader"]["for"] == "2m"
    assert 'lease="data-manager-auditor"' in alerts["DataManagerAuditorNoLeader"]["expr"]
    assert alerts["DataManagerRejectRatioHigh"]["expr"].endswith("> 0.05")
    assert 'severity="high"' in alerts["DataManagerAuditHighSeverityFindings"]["expr"]
    # Too old = 3 intervals: 3 x 300 s for the auditor, 3 x 900 s for analytics.
    assert "> 900 or absent(" in alerts["DataManagerAuditorCycleStale"]["expr"]
    assert "> 2700 or absent(" in alerts["DataManagerAnalyticsCycleStale"]["expr"]
    assert alerts["DataManagerAuditorFenced"]["expr"] == (
        'sum(max by (pod) (increase(data_manager_audit_fenced_total{namespace="petrosa-apps", '
        'pod=~"data-manager-auditor-[a-z0-9]+-[a-z0-9]+", job="data-manager-auditor"}[15m]))) >= 3'
    )


def test_prometheus_rule_without_schedulers_has_only_consumer_alerts():
    values = {"metrics": {"prometheusRule": {"enabled": True}}}
    assert set(_alerts(render(values))) == {
        "DataManagerConsumerNoMessages", "DataManagerRejectRatioHigh", "DataManagerNatsDisconnected",
    }


def _metrics_in(text: str) -> set[str]:
    names = set(re.findall(r"\b(data_manager_[a-z_]+)", text))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


def test_alerts_and_dashboard_use_only_metrics_the_binaries_export():
    known = metric_names_in_crates()
    [rule] = render(EVERYTHING_ON).of_kind("PrometheusRule")
    used = _metrics_in(json.dumps(rule)) | _metrics_in((REPO / "deploy/grafana/data-manager.json").read_text())
    assert used <= known, used - known
    assert {"data_manager_leader_is_leader", "data_manager_event_latency_seconds",
            "data_manager_audit_health_score", "data_manager_messages_rejected_total"} <= used


def test_dashboard_configmap_carries_the_deploy_json_for_the_sidecar():
    rendered = render(EVERYTHING_ON)
    config_map = rendered.get("ConfigMap", "data-manager-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    source = (REPO / "deploy/grafana/data-manager.json").read_text()
    assert json.loads(config_map["data"]["data-manager.json"]) == json.loads(source)
    assert (CHART / "dashboards/data-manager.json").resolve() == (REPO / "deploy/grafana/data-manager.json")


def test_dashboard_shows_what_the_issue_lists():
    dashboard = json.loads((REPO / "deploy/grafana/data-manager.json").read_text())
    exprs = {p["title"]: " ".join(t["expr"] for t in p.get("targets", [])) for p in dashboard["panels"]}
    def panel_with(metric, by):
        return [t for t, e in exprs.items() if metric in e and re.search(rf"by \([^)]*{by}", e)]
    assert panel_with("data_manager_messages_processed_total", "event_type")
    assert panel_with("data_manager_messages_rejected_total", "reason")
    assert panel_with("data_manager_event_latency_seconds_bucket", "event_type")
    assert panel_with("data_manager_leader_is_leader", "lease")
    assert panel_with("data_manager_audit_health_score", "symbol, timeframe")
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_observability_objects_are_off_by_default():
    kinds = {o["kind"] for o in render(SCHEDULERS_ON).objects}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    assert not any(n.endswith("-dashboard") for _, n in render(SCHEDULERS_ON).names())


# === NOTES.txt ===


def test_notes_tell_how_to_enable_the_schedulers():
    notes = render(DEFAULTS).notes
    assert "data-manager-consumer" in notes
    assert "--set schedulers.enabled=true" in notes
    notes_on = render(SCHEDULERS_ON).notes
    assert "Lease data-manager-auditor" in notes_on and "Lease data-manager-analytics" in notes_on
    assert "--set schedulers.enabled=true" not in notes_on


# === values that must be refused ===


BAD_VALUES = sorted(p.name for p in VALUES_DIR.glob("bad-*.yaml"))


@pytest.mark.parametrize("filename", BAD_VALUES)
def test_bad_values_file_is_rejected_by_the_schema_with_a_clear_message(filename):
    path = VALUES_DIR / filename
    expected = re.match(r"# expect: (.+)", path.read_text()).group(1)
    message = render_error(load_values_file(filename))
    assert "values don't meet the specifications of the schema" in message
    assert expected in message, message


def test_there_are_bad_values_files():
    assert len(BAD_VALUES) >= 8


@pytest.mark.parametrize(
    "values, expected",
    [
        ({"schedulers": {"enabled": True, "leaderElection": {"leaseDurationSeconds": 10}}},
         "leaseDurationSeconds (10) must be longer than renewDeadlineSeconds (10)"),
        ({"schedulers": {"enabled": True, "leaderElection": {"retryPeriodSeconds": 9}}},
         "renewDeadlineSeconds (10) must be longer than 1.2 x retryPeriodSeconds (9)"),
        ({"consumer": {"shutdownGraceSeconds": 30}},
         "consumer: shutdownGraceSeconds (30) must be below terminationGracePeriodSeconds (30)"),
        ({"schedulers": {"enabled": True, "auditor": {"shutdownGraceSeconds": 45}}},
         "schedulers.auditor: shutdownGraceSeconds (45) must be below terminationGracePeriodSeconds (30)"),
        ({"schedulers": {"enabled": True, "analytics": {"leaseName": "data-manager-auditor"}}},
         "auditor and analytics need different leaseName values"),
        ({"consumer": {"autoscaling": {"minReplicas": 11}}},
         "minReplicas (11) must not exceed maxReplicas (10)"),
    ],
    ids=["lease-duration", "retry-period", "consumer-grace", "auditor-grace", "same-lease", "hpa-bounds"],
)
def test_inconsistent_values_fail_the_render_with_a_clear_message(values, expected):
    assert expected in render_error(values)


def test_defaults_file_is_valid_against_the_schema():
    helm_python.Chart.load(CHART).validate_schema(chart_defaults())
