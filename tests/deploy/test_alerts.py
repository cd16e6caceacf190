"""The chart's alerts as Prometheus runs them: `promtool check rules` on the rendered
PrometheusRule, and `promtool test rules` with synthetic series for every alert. Each alert fires
on its cause and stays silent for a pod scraped twice, for an ex-leader's stale gauges and for
the Python service's pods in the same namespace (same metric names, other pod names)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import EVERYTHING_ON, NAMESPACE, REPO, promtool, render

# Rules as rendered for a Prometheus that scrapes pod annotations, and for the operator's
# ServiceMonitor (whose `job` is the Service's name).
MODES = {
    "annotations": {"schedulers": {"enabled": True}, "metrics": {"prometheusRule": {"enabled": True}}},
    "service-monitor": EVERYTHING_ON,
}
CONSUMER_POD = "data-manager-consumer-7d9f8c6b5d-x2x4z"
CONSUMER_POD_2 = "data-manager-consumer-7d9f8c6b5d-q8w7n"
AUDITOR_PODS = ("data-manager-auditor-5b7f9c8d4-k2j9x", "data-manager-auditor-5b7f9c8d4-m4n6p")
ANALYTICS_PODS = ("data-manager-analytics-6c9d8f7b5-r5t7v", "data-manager-analytics-6c9d8f7b5-w2z4b")
# The Python service: Deployment petrosa-data-manager in the same namespace, scraped through its
# pod annotations.
PYTHON_POD = "petrosa-data-manager-5c8d7f9b4-abcde"


def rules(mode: str) -> dict:
    [rule] = render(MODES[mode]).of_kind("PrometheusRule")
    return {"groups": rule["spec"]["groups"]}


def rule(mode: str, alert: str) -> dict:
    return next(r for g in rules(mode)["groups"] for r in g["rules"] if r.get("alert") == alert)


def series(metric: str, pod: str, mode: str, values: str, job: str | None = None, **labels: str) -> dict:
    """One input series as the given scrape path labels it."""
    if job is None:
        job = pod.rsplit("-", 2)[0] if mode == "service-monitor" and pod != PYTHON_POD else "kubernetes-pods"
    all_labels = {"namespace": NAMESPACE, "pod": pod, "job": job, **labels}
    text = ", ".join(f'{k}="{v}"' for k, v in sorted(all_labels.items()))
    return {"series": f"{metric}{{{text}}}", "values": values}


def twice(metric: str, pod: str, mode: str, values: str, **labels: str) -> list[dict]:
    """The same pod scraped by two jobs (the operator's and an annotation-based one)."""
    operator_job = pod.rsplit("-", 2)[0]
    return [series(metric, pod, mode, values, job=operator_job, **labels),
            series(metric, pod, mode, values, job="kubernetes-pods", **labels)]


def expected(mode: str, alert: str, value: str | None = None, **labels: str) -> dict:
    """The alert as promtool reports it: the rule's labels and annotations, templates filled."""
    r = rule(mode, alert)
    annotations = {}
    for key, text in r["annotations"].items():
        text = text.replace("{{ $value | humanizePercentage }}", str(value))
        text = text.replace("{{ $value }}", str(value))
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)
        assert "{{" not in text, text
        annotations[key] = text
    return {"exp_labels": {**r["labels"], **labels}, "exp_annotations": annotations}


def run_promtool_test(mode: str, alert: str, input_series: list[dict], eval_time: str,
                      exp_alerts: list[dict], tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules(mode)))
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": input_series,
            "alert_rule_test": [{"eval_time": eval_time, "alertname": alert, "exp_alerts": exp_alerts}],
        }],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run([promtool(), "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# === promtool check rules ===


@pytest.mark.parametrize("mode", sorted(MODES))
def test_rendered_rules_pass_promtool_check_rules(mode, tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules(mode)))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 12 rules found" in result.stdout, result.stdout


def test_every_alert_has_a_unit_test_that_makes_it_fire():
    alerts = {r["alert"] for g in rules("annotations")["groups"] for r in g["rules"]}
    firing = {case[0] for case in FIRES}
    assert alerts == firing


# === each alert fires on its cause ===

FLAT, RISING = "0x30", "0+60x30"
FIRES = [
    # No message on our consumers, while the Python pods still receive: the old rule was silent.
    ("DataManagerConsumerNoMessages", "10m", {},
     lambda m: [series("data_manager_messages_received_total", CONSUMER_POD, m, FLAT),
                series("data_manager_messages_received_total", PYTHON_POD, m, RISING, event_type="raw")]),
    # 10 % rejected on our pods; the Python pods' traffic (no reject counter) no longer dilutes it.
    ("DataManagerRejectRatioHigh", "20m", {"value": "10%"},
     lambda m: [series("data_manager_messages_received_total", CONSUMER_POD, m, "0+100x30"),
                series("data_manager_messages_rejected_total", CONSUMER_POD, m, "0+10x30", reason="invalid_json"),
                series("data_manager_messages_received_total", PYTHON_POD, m, "0+5000x30", event_type="raw")]),
    ("DataManagerNatsDisconnected", "5m", {"pod": CONSUMER_POD},
     lambda m: [series("data_manager_nats_connection_status", CONSUMER_POD, m, "0x30"),
                series("data_manager_nats_connection_status", CONSUMER_POD_2, m, "1x30")]),
    # A Python pod claiming a leader gauge with the same Lease name does not hide ours.
    ("DataManagerAuditorNoLeader", "5m", {},
     lambda m: [series("data_manager_leader_is_leader", p, m, "0x30", lease="data-manager-auditor") for p in AUDITOR_PODS]
     + [series("data_manager_leader_is_leader", PYTHON_POD, m, "1x30", lease="data-manager-auditor")]),
    ("DataManagerAnalyticsNoLeader", "5m", {},
     lambda m: [series("data_manager_leader_is_leader", p, m, "0x30", lease="data-manager-analytics") for p in ANALYTICS_PODS]),
    ("DataManagerAuditorMultipleLeaders", "5m", {"value": "2"},
     lambda m: [series("data_manager_leader_is_leader", p, m, "1x30", lease="data-manager-auditor") for p in AUDITOR_PODS]),
    ("DataManagerAnalyticsMultipleLeaders", "5m", {"value": "2"},
     lambda m: [series("data_manager_leader_is_leader", p, m, "1x30", lease="data-manager-analytics") for p in ANALYTICS_PODS]),
    # The last success stays at t=0: older than 3 x 300 s, then `for` 300 s more.
    ("DataManagerAuditorCycleStale", "25m", {},
     lambda m: [series("data_manager_audit_last_success_timestamp_seconds", AUDITOR_PODS[0], m, "0x30"),
                series("data_manager_audit_last_success_timestamp_seconds", PYTHON_POD, m, RISING)]),
    # Never a success: absent() keeps the selector's equality labels.
    ("DataManagerAnalyticsCycleStale", "25m", lambda m: {"namespace": NAMESPACE} | (
        {"job": "data-manager-analytics"} if m == "service-monitor" else {}),
     lambda m: [series("data_manager_leader_is_leader", ANALYTICS_PODS[0], m, "1x30", lease="data-manager-analytics")]),
    # Three fenced terms in 15 minutes: a stale leader or a re-created Lease.
    ("DataManagerAuditorFenced", "20m", {},
     lambda m: [series("data_manager_audit_fenced_total", AUDITOR_PODS[0], m, "0x10 5x20")]),
    ("DataManagerAnalyticsFenced", "20m", {},
     lambda m: [series("data_manager_analytics_fenced_total", ANALYTICS_PODS[0], m, "0x10 5x20")]),
    ("DataManagerAuditHighSeverityFindings", "20m", {"value": "3", "check": "gap"},
     lambda m: [series("data_manager_leader_is_leader", AUDITOR_PODS[0], m, "1x30", lease="data-manager-auditor"),
                series("data_manager_audit_findings", AUDITOR_PODS[0], m, "3x30", check="gap", severity="high")]),
]


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("alert, eval_time, fired, inputs", FIRES, ids=[c[0] for c in FIRES])
def test_alert_fires_on_its_cause(alert, eval_time, fired, inputs, mode, tmp_path):
    fired = dict(fired(mode) if callable(fired) else fired)
    value = fired.pop("value", None)
    run_promtool_test(mode, alert, inputs(mode), eval_time, [expected(mode, alert, value, **fired)], tmp_path)


def test_cycle_stale_waits_for_its_for_duration(tmp_path):
    inputs = [series("data_manager_audit_last_success_timestamp_seconds", AUDITOR_PODS[0], "annotations", "0x30")]
    # Older than 900 s from 16 m on; pending until 21 m.
    run_promtool_test("annotations", "DataManagerAuditorCycleStale", inputs, "18m", [], tmp_path)


# === and stays silent for what is not its cause ===

SILENT = [
    # Our consumer receives (scraped twice); only the Python pods are idle.
    ("DataManagerConsumerNoMessages", "consumer-scraped-twice-python-idle",
     lambda m: twice("data_manager_messages_received_total", CONSUMER_POD, m, RISING)
     + [series("data_manager_messages_received_total", PYTHON_POD, m, FLAT, event_type="raw")]),
    # 2 % rejected, scraped twice: both sides double, the ratio stays 2 %.
    ("DataManagerRejectRatioHigh", "consumer-scraped-twice",
     lambda m: twice("data_manager_messages_received_total", CONSUMER_POD, m, "0+100x30")
     + twice("data_manager_messages_rejected_total", CONSUMER_POD, m, "0+2x30", reason="no_symbol")),
    # The Python service's rejects (if it had such a counter) are not ours.
    ("DataManagerRejectRatioHigh", "python-pods-reject",
     lambda m: [series("data_manager_messages_received_total", CONSUMER_POD, m, "0+100x30"),
                series("data_manager_messages_rejected_total", CONSUMER_POD, m, "0+1x30", reason="no_symbol"),
                series("data_manager_messages_rejected_total", PYTHON_POD, m, "0+50x30", reason="no_symbol")]),
    # The Python client gave up reconnecting (it does, after 10 tries); ours is connected.
    ("DataManagerNatsDisconnected", "python-pod-disconnected",
     lambda m: twice("data_manager_nats_connection_status", CONSUMER_POD, m, "1x30")
     + [series("data_manager_nats_connection_status", PYTHON_POD, m, "0x30")]),
    # The ex-leader reports 0, the new leader 1.
    ("DataManagerAuditorNoLeader", "ex-leader",
     lambda m: [series("data_manager_leader_is_leader", AUDITOR_PODS[0], m, "0x30", lease="data-manager-auditor"),
                series("data_manager_leader_is_leader", AUDITOR_PODS[1], m, "1x30", lease="data-manager-auditor")]),
    ("DataManagerAnalyticsNoLeader", "leader-scraped-twice",
     lambda m: twice("data_manager_leader_is_leader", ANALYTICS_PODS[0], m, "1x30", lease="data-manager-analytics")),
    # One holder, scraped twice: `sum > 1` fired here permanently.
    ("DataManagerAuditorMultipleLeaders", "leader-scraped-twice",
     lambda m: twice("data_manager_leader_is_leader", AUDITOR_PODS[0], m, "1x30", lease="data-manager-auditor")
     + [series("data_manager_leader_is_leader", AUDITOR_PODS[1], m, "0x30", lease="data-manager-auditor")]),
    ("DataManagerAnalyticsMultipleLeaders", "leader-scraped-twice",
     lambda m: twice("data_manager_leader_is_leader", ANALYTICS_PODS[0], m, "1x30", lease="data-manager-analytics")),
    # A Python pod claiming the same Lease name is not a second holder of ours.
    ("DataManagerAuditorMultipleLeaders", "python-pod-claims",
     lambda m: [series("data_manager_leader_is_leader", AUDITOR_PODS[0], m, "1x30", lease="data-manager-auditor"),
                series("data_manager_leader_is_leader", PYTHON_POD, m, "1x30", lease="data-manager-auditor")]),
    # The ex-leader's last success is old; the current leader's is fresh.
    ("DataManagerAuditorCycleStale", "ex-leader-stale-gauge",
     lambda m: [series("data_manager_audit_last_success_timestamp_seconds", AUDITOR_PODS[0], m, "0x30"),
                series("data_manager_audit_last_success_timestamp_seconds", AUDITOR_PODS[1], m, RISING)]),
    ("DataManagerAnalyticsCycleStale", "leader-scraped-twice",
     lambda m: twice("data_manager_analytics_last_success_timestamp_seconds", ANALYTICS_PODS[0], m, RISING)),
    # Two fenced terms, scraped twice: counted once per pod, below the threshold.
    ("DataManagerAuditorFenced", "fenced-twice-scraped-twice",
     lambda m: twice("data_manager_audit_fenced_total", AUDITOR_PODS[0], m, "0x10 2x20")),
    ("DataManagerAnalyticsFenced", "fenced-twice-scraped-twice",
     lambda m: twice("data_manager_analytics_fenced_total", ANALYTICS_PODS[0], m, "0x10 2x20")),
    # The Python service's pods are not ours, whatever they count.
    ("DataManagerAuditorFenced", "python-pod-fenced",
     lambda m: [series("data_manager_audit_fenced_total", PYTHON_POD, m, "0x10 9x20")]),
    # The ex-leader still exports its last audit's findings; the current leader found none.
    ("DataManagerAuditHighSeverityFindings", "ex-leader-stale-gauge",
     lambda m: [series("data_manager_leader_is_leader", AUDITOR_PODS[0], m, "0x30", lease="data-manager-auditor"),
                series("data_manager_audit_findings", AUDITOR_PODS[0], m, "7x30", check="gap", severity="high"),
                series("data_manager_leader_is_leader", AUDITOR_PODS[1], m, "1x30", lease="data-manager-auditor"),
                series("data_manager_audit_findings", AUDITOR_PODS[1], m, "0x30", check="gap", severity="high")]),
    ("DataManagerAuditHighSeverityFindings", "python-pod-findings",
     lambda m: [series("data_manager_leader_is_leader", AUDITOR_PODS[0], m, "1x30", lease="data-manager-auditor"),
                series("data_manager_audit_findings", AUDITOR_PODS[0], m, "0x30", check="gap", severity="high"),
                series("data_manager_audit_findings", PYTHON_POD, m, "4x30", check="gap", severity="high")]),
]


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("alert, case, inputs", SILENT, ids=[f"{c[0]}-{c[1]}" for c in SILENT])
def test_alert_stays_silent_without_its_cause(alert, case, inputs, mode, tmp_path):
    run_promtool_test(mode, alert, inputs(mode), "25m", [], tmp_path)


def test_every_alert_has_a_silent_case():
    alerts = {r["alert"] for g in rules("annotations")["groups"] for r in g["rules"]}
    assert {c[0] for c in SILENT} == alerts


@pytest.mark.parametrize("mode", sorted(MODES))
def test_findings_of_a_leader_scraped_twice_are_counted_once(mode, tmp_path):
    inputs = twice("data_manager_leader_is_leader", AUDITOR_PODS[0], mode, "1x30", lease="data-manager-auditor") + twice(
        "data_manager_audit_findings", AUDITOR_PODS[0], mode, "3x30", check="gap", severity="high")
    exp = [expected(mode, "DataManagerAuditHighSeverityFindings", "3", check="gap")]
    run_promtool_test(mode, "DataManagerAuditHighSeverityFindings", inputs, "20m", exp, tmp_path)


# === the dashboard's queries ===


def dashboard_queries() -> dict[str, str]:
    """Panel title (+ target index) -> PromQL, with Grafana's variables filled in."""
    dashboard = json.loads((REPO / "deploy/grafana/data-manager.json").read_text())
    fill = {"$namespace": NAMESPACE, "${release}": "data-manager", "$__rate_interval": "2m", "$__range": "1h"}
    out = {}
    for panel in dashboard["panels"]:
        for n, target in enumerate(panel.get("targets", [])):
            expr = target["expr"]
            for var, value in fill.items():
                expr = expr.replace(var, value)
            out[f"{panel['title']} #{n}"] = expr
    return out


def test_every_dashboard_query_parses_and_selects_this_releases_pods(tmp_path):
    queries = dashboard_queries()
    records = [{"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(queries.values())]
    path = tmp_path / "dashboard.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for title, expr in queries.items():
        for matchers in re.findall(r"data_manager_[a-z_]+\{([^}]*)\}", expr):
            assert re.search(r'pod=~"data-manager-(consumer|auditor|analytics|\(auditor\|analytics\))-', matchers), (title, matchers)


def test_lease_holders_panel_counts_a_pod_scraped_twice_once(tmp_path):
    [expr] = [e for t, e in dashboard_queries().items() if t.startswith("Lease holders")]
    inputs = twice("data_manager_leader_is_leader", AUDITOR_PODS[0], "annotations", "1x10", lease="data-manager-auditor") + [
        series("data_manager_leader_is_leader", AUDITOR_PODS[1], "annotations", "0x10", lease="data-manager-auditor"),
        series("data_manager_leader_is_leader", PYTHON_POD, "annotations", "1x10", lease="data-manager-auditor")]
    (tmp_path / "empty.yml").write_text("groups: []\n")
    test = {"rule_files": ["empty.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": inputs,
        "promql_expr_test": [{"expr": expr, "eval_time": "5m",
                              "exp_samples": [{"labels": '{lease="data-manager-auditor"}', "value": 1}]}]}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run([promtool(), "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
