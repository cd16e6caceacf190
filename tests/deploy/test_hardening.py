"""Deploy hardening: values that cannot defeat the chart's safety, alerts that select only this
release's pods, closed security contexts, per-release Leases, spreading, and the upgrade path.
Every test here failed on the chart before the hardening."""

from __future__ import annotations

import re

import pytest

from conftest import (
    EVERYTHING_ON,
    NAMESPACE,
    SCHEDULERS_ON,
    pod_specs,
    render,
    render_error,
    render_error_without_schema,
    render_release,
    render_without_schema,
)

CONSUMER = "data-manager-consumer"
AUDITOR = "data-manager-auditor"
ANALYTICS = "data-manager-analytics"
SCHEDULER = "data-manager-scheduler"
SCHEMA_REFUSED = "values don't meet the specifications of the schema"
EXTRA_CONFIG_PATHS = {
    "consumer": lambda extra: {"consumer": {"extraConfig": extra}},
    "auditor": lambda extra: {"schedulers": {"enabled": True, "auditor": {"extraConfig": extra}}},
    "analytics": lambda extra: {"schedulers": {"enabled": True, "analytics": {"extraConfig": extra}}},
}


# === 1. chart-owned settings cannot be overridden ===

CHART_OWNED = [
    "LEADER_ELECTION", "LEASE_NAME", "LEASE_DURATION", "LEASE_RENEW_DEADLINE", "LEASE_RETRY_PERIOD",
    "POD_NAME", "POD_NAMESPACE", "HOSTNAME", "METRICS_PORT", "METRICS_HOST", "ENABLE_AUDITOR",
    "ENABLE_ANALYTICS", "LOG_LEVEL", "LOG_FORMAT", "SHUTDOWN_GRACE", "SUPPORTED_PAIRS",
    "AUDIT_INTERVAL", "AUDIT_TIMEFRAMES", "ANALYTICS_INTERVAL", "ANALYTICS_TIMEFRAMES",
    "NATS_CONSUMER_SUBJECT", "NATS_QUEUE_GROUP", "STATS_INTERVAL",
]


@pytest.mark.parametrize("key", CHART_OWNED)
@pytest.mark.parametrize("where", sorted(EXTRA_CONFIG_PATHS))
def test_schema_refuses_every_chart_owned_key_in_every_extra_config(where, key):
    message = render_error(EXTRA_CONFIG_PATHS[where]({key: "x"}))
    assert SCHEMA_REFUSED in message
    assert f"invalid propertyName '{key}'" in message, message


@pytest.mark.parametrize(
    "where, key",
    [("auditor", "AUDIT_WINDOW"), ("auditor", "AUDIT_MAX_LAG"), ("analytics", "ANALYTICS_WINDOW_MODE"),
     ("consumer", "NATS_CONNECT_TIMEOUT"), ("consumer", "FLUSH_INTERVAL"), ("auditor", "DB_TIMEOUT")],
)
def test_tuning_settings_the_chart_does_not_own_are_still_accepted(where, key):
    rendered = render(EXTRA_CONFIG_PATHS[where]({key: "7"}))
    assert rendered.get("ConfigMap", f"data-manager-{where}")["data"][key] == "7"


def test_the_production_incident_values_are_refused():
    """LEADER_ELECTION=disabled with two replicas made every replica lead."""
    values = {"schedulers": {"enabled": True, "auditor": {"replicaCount": 2, "extraConfig": {"LEADER_ELECTION": "disabled"}}}}
    assert "invalid propertyName 'LEADER_ELECTION'" in render_error(values)


def test_without_the_schema_the_charts_own_keys_still_win(tmp_path):
    hostile = {"LEADER_ELECTION": "disabled", "LEASE_NAME": "other", "METRICS_PORT": "1234",
               "ENABLE_AUDITOR": "false", "AUDIT_WINDOW": "86400"}
    values = {"schedulers": {"enabled": True, "auditor": {"extraConfig": hostile}},
              "consumer": {"extraConfig": {"METRICS_PORT": "1234", "NATS_QUEUE_GROUP": "mine"}}}
    rendered = render_without_schema(values, tmp_path)
    auditor = rendered.get("ConfigMap", AUDITOR)["data"]
    assert (auditor["LEADER_ELECTION"], auditor["LEASE_NAME"], auditor["METRICS_PORT"], auditor["ENABLE_AUDITOR"]) == (
        "kubernetes", AUDITOR, "9090", "true")
    assert auditor["AUDIT_WINDOW"] == "86400"  # what the chart does not own passes through
    assert rendered.get("Role", SCHEDULER)["rules"][0]["resourceNames"] == [AUDITOR, ANALYTICS]
    consumer = rendered.get("ConfigMap", CONSUMER)["data"]
    assert (consumer["METRICS_PORT"], consumer["NATS_QUEUE_GROUP"]) == ("9090", "data-manager-consumer")
    for name, spec in pod_specs(rendered).items():
        assert spec["containers"][0]["ports"][0]["containerPort"] == 9090, name


# === 2. one scrape per pod; alerts on this release's pods only ===


def _scrape_annotations(deployment: dict) -> dict:
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    return {k: v for k, v in annotations.items() if k.startswith("prometheus.io/")}


def test_scrape_annotations_only_while_no_service_monitor_scrapes_the_pods():
    with_monitor = render(EVERYTHING_ON)
    assert with_monitor.of_kind("ServiceMonitor")
    for deployment in with_monitor.of_kind("Deployment"):
        assert _scrape_annotations(deployment) == {}, deployment["metadata"]["name"]
    for deployment in render(SCHEDULERS_ON).of_kind("Deployment"):
        assert _scrape_annotations(deployment)["prometheus.io/scrape"] == "true"


def _alerts(rendered) -> dict[str, str]:
    [rule] = rendered.of_kind("PrometheusRule")
    return {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}


PROMETHEUS_ON = {"schedulers": {"enabled": True}, "metrics": {"prometheusRule": {"enabled": True}}}


@pytest.mark.parametrize("values", [PROMETHEUS_ON, EVERYTHING_ON], ids=["annotations", "service-monitor"])
def test_every_metric_selector_in_every_alert_names_this_releases_pods(values):
    alerts = _alerts(render(values))
    assert len(alerts) == 12
    for alert, expr in alerts.items():
        selectors = re.findall(r"(data_manager_[a-z_]+)\{([^}]*)\}", expr)
        assert selectors and len(selectors) == expr.count("data_manager_"), (alert, expr)
        for metric, matchers in selectors:
            component = "consumer" if "messages" in metric or "nats" in metric else (
                "auditor" if "audit" in metric or "Audit" in alert else "analytics")
            assert f'namespace="{NAMESPACE}"' in matchers, (alert, metric)
            assert f'pod=~"data-manager-{component}-[a-z0-9]+-[a-z0-9]+"' in matchers, (alert, metric)
            has_job = f'job="data-manager-{component}"' in matchers
            assert has_job == (values is EVERYTHING_ON), (alert, metric)


def test_leader_alerts_count_distinct_pods():
    alerts = _alerts(render(PROMETHEUS_ON))
    for name in ("Auditor", "Analytics"):
        expr = alerts[f"DataManager{name}MultipleLeaders"]
        assert expr.startswith("count(max by (pod) (data_manager_leader_is_leader{") and expr.endswith("== 1) > 1"), expr


def test_audit_findings_alert_counts_only_the_lease_holders_series():
    expr = _alerts(render(PROMETHEUS_ON))["DataManagerAuditHighSeverityFindings"]
    assert re.search(r'and on \(pod\) \(max by \(pod\) \(data_manager_leader_is_leader\{[^}]*lease="data-manager-auditor"\}\) == 1\)', expr), expr


def test_alert_pod_label_is_configurable():
    values = {**PROMETHEUS_ON, "metrics": {"prometheusRule": {"enabled": True, "podLabel": "kubernetes_pod_name"}}}
    for expr in _alerts(render(values)).values():
        assert "kubernetes_pod_name=~" in expr and " pod=~" not in expr


# === 3. closed security contexts ===


@pytest.mark.parametrize(
    "values, expected",
    [
        ({"containerSecurityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}, "additional properties 'add' not allowed"),
        ({"containerSecurityContext": {"seccompProfile": {"type": "Unconfined"}}}, "/containerSecurityContext/seccompProfile/type"),
        ({"podSecurityContext": {"seccompProfile": {"type": "Unconfined"}}}, "/podSecurityContext/seccompProfile/type"),
        ({"podSecurityContext": {"seccompProfile": None}}, "missing property 'seccompProfile'"),
        ({"containerSecurityContext": {"seccompProfile": {"type": "Localhost"}}}, "missing property 'localhostProfile'"),
        ({"containerSecurityContext": {"privileged": True}}, "/containerSecurityContext/privileged"),
        ({"containerSecurityContext": {"procMount": "Unmasked"}}, "additional properties 'procMount' not allowed"),
        ({"podSecurityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]}}, "additional properties 'sysctls' not allowed"),
        ({"podSecurityContext": {"runAsGroup": 0}}, "/podSecurityContext/runAsGroup"),
    ],
    ids=["cap-add", "container-unconfined", "pod-unconfined", "pod-no-seccomp", "localhost-no-profile",
         "privileged", "proc-mount", "sysctls", "root-group"],
)
def test_security_contexts_are_closed(values, expected):
    message = render_error(values)
    assert SCHEMA_REFUSED in message and expected in message, message


def test_a_localhost_seccomp_profile_is_accepted():
    values = {"containerSecurityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/dm.json"}}}
    [container] = pod_specs(render(values))[CONSUMER]["containers"]
    assert container["securityContext"]["seccompProfile"] == {"type": "Localhost", "localhostProfile": "profiles/dm.json"}


# === 3. Leases per release ===


def test_lease_names_derive_from_the_release():
    canary = render_release(PROMETHEUS_ON, "canary")
    leases = ["canary-data-manager-auditor", "canary-data-manager-analytics"]
    assert canary.get("Role", "canary-data-manager-scheduler")["rules"][0]["resourceNames"] == leases
    assert canary.get("ConfigMap", "canary-data-manager-auditor")["data"]["LEASE_NAME"] == leases[0]
    assert canary.get("ConfigMap", "canary-data-manager-analytics")["data"]["LEASE_NAME"] == leases[1]
    assert f'lease="{leases[0]}"' in _alerts(canary)["DataManagerAuditorNoLeader"]
    assert f"Lease {leases[1]}" in canary.notes
    # The release `data-manager` keeps the names it had.
    production = render(SCHEDULERS_ON)
    assert production.get("Role", SCHEDULER)["rules"][0]["resourceNames"] == [AUDITOR, ANALYTICS]


def test_two_releases_in_one_namespace_share_no_lease():
    ours = set(render(SCHEDULERS_ON).get("Role", SCHEDULER)["rules"][0]["resourceNames"])
    theirs = set(render_release(SCHEDULERS_ON, "canary").get("Role", "canary-data-manager-scheduler")["rules"][0]["resourceNames"])
    assert ours and theirs and not ours & theirs


# === 3. spreading ===


def test_every_deployment_prefers_one_replica_per_node():
    rendered = render(SCHEDULERS_ON)
    for deployment in rendered.of_kind("Deployment"):
        affinity = deployment["spec"]["template"]["spec"]["affinity"]
        [term] = affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert term["weight"] == 100
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        assert term["podAffinityTerm"]["labelSelector"] == deployment["spec"]["selector"]
        assert "requiredDuringSchedulingIgnoredDuringExecution" not in affinity["podAntiAffinity"]


def test_a_users_affinity_replaces_the_default():
    mine = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["apps"]}]}]}}}
    specs = pod_specs(render({"schedulers": {"enabled": True, "affinity": mine}}))
    assert specs[AUDITOR]["affinity"] == mine
    assert "podAntiAffinity" in specs[CONSUMER]["affinity"]


# === 3. the schedulers' ServiceAccount ===


def test_an_existing_service_account_is_used_and_not_created():
    values = {"schedulers": {"enabled": True, "serviceAccount": {"create": False, "name": "platform-leases"}}}
    rendered = render(values)
    assert not [sa for sa in rendered.of_kind("ServiceAccount") if sa["metadata"]["name"] != CONSUMER]
    assert rendered.get("RoleBinding", SCHEDULER)["subjects"][0]["name"] == "platform-leases"
    for name in (AUDITOR, ANALYTICS):
        assert pod_specs(rendered)[name]["serviceAccountName"] == "platform-leases"


def test_a_named_service_account_is_created_by_default():
    rendered = render({"schedulers": {"enabled": True, "serviceAccount": {"name": "dm-leases"}}})
    assert rendered.get("ServiceAccount", "dm-leases")["automountServiceAccountToken"] is True


def test_not_creating_a_service_account_needs_its_name(tmp_path):
    values = {"schedulers": {"enabled": True, "serviceAccount": {"create": False}}}
    assert "/schedulers/serviceAccount/name" in render_error(values)
    assert "with create=false, name must name an existing ServiceAccount" in render_error_without_schema(values, tmp_path)


# === 3. upgrade path, PDB ===


def test_notes_recommend_reset_then_reuse_values():
    notes = render({}).notes
    commands = [line for line in notes.splitlines() if "helm upgrade" in line]
    assert commands and all("--reset-then-reuse-values" in c for c in commands), commands


@pytest.mark.parametrize("bad", [0, "0", "0%", -1])
def test_a_pod_disruption_budget_that_blocks_drains_is_refused(bad, tmp_path):
    values = {"consumer": {"podDisruptionBudget": {"maxUnavailable": bad}}}
    assert "/consumer/podDisruptionBudget/maxUnavailable" in render_error(values)
    assert "maxUnavailable must be at least 1" in render_error_without_schema(values, tmp_path)


@pytest.mark.parametrize("good", [1, 2, "25%", "100%"])
def test_a_pod_disruption_budget_of_at_least_one_is_accepted(good):
    pdb = render({"consumer": {"podDisruptionBudget": {"maxUnavailable": good}}}).get("PodDisruptionBudget", CONSUMER)
    assert pdb["spec"]["maxUnavailable"] == good


# === labels the selectors rely on ===


@pytest.mark.parametrize("values", [
    {"commonLabels": {"app.kubernetes.io/instance": "other"}},
    {"consumer": {"podLabels": {"app.kubernetes.io/component": "auditor"}}},
    {"schedulers": {"enabled": True, "podLabels": {"app.kubernetes.io/component": "consumer"}}},
    {"schedulers": {"podLabels": {"helm.sh/chart": "x"}}},
], ids=["common-instance", "consumer-component", "scheduler-component", "chart"])
def test_extra_labels_cannot_replace_the_labels_selectors_use(values):
    message = render_error(values)
    assert SCHEMA_REFUSED in message and "invalid propertyName" in message, message


def test_other_extra_labels_are_kept():
    rendered = render({"commonLabels": {"team": "data"}, "consumer": {"podLabels": {"tier": "stream"}}})
    labels = rendered.get("Deployment", CONSUMER)["spec"]["template"]["metadata"]["labels"]
    assert labels["team"] == "data" and labels["tier"] == "stream"
