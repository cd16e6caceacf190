"""docs/: a runbook for every alert the chart renders, at the alert's runbook_url; the operations
guide's sections and its metric mapping; the upgrade command the docs recommend."""

from __future__ import annotations

import re

import pytest

from conftest import CHART, EVERYTHING_ON, REPO, chart_defaults, metric_names_in_crates, render

DOCS = REPO / "docs"
OPERATIONS = DOCS / "operations.md"
# The Python service's metric names (what its dashboards and alerts use today).
PYTHON_METRICS = [
    "data_manager_messages_received_total", "data_manager_messages_processed_total",
    "data_manager_messages_failed_total", "data_manager_message_processing_seconds",
    "data_manager_nats_connection_status", "data_manager_nats_reconnections_total",
    "data_manager_nats_errors_total", "data_manager_audit_cycle_seconds",
    "data_manager_audit_gaps_detected_total", "data_manager_audit_duplicates_detected_total",
    "data_manager_audit_health_score", "data_manager_audit_leader_status",
    "data_manager_audit_backfills_triggered_total",
]


def _rules() -> list[dict]:
    [rule] = render(EVERYTHING_ON).of_kind("PrometheusRule")
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


@pytest.mark.parametrize("alert", [r["alert"] for r in _rules()])
def test_every_alert_links_a_runbook_that_exists_and_answers_the_three_questions(alert):
    [rule] = [r for r in _rules() if r["alert"] == alert]
    url = rule["annotations"]["runbook_url"]
    base = chart_defaults()["metrics"]["prometheusRule"]["runbookBaseUrl"]
    assert url == f"{base}/{alert}.md"
    assert base.endswith("/docs/runbooks")
    page = (DOCS / "runbooks" / f"{alert}.md").read_text()
    assert page.startswith(f"# {alert} ({rule['labels']['severity']})")
    headings = re.findall(r"^## (.+)$", page, re.MULTILINE)
    assert headings == ["What it means", "How to confirm", "What to do"], headings


def test_runbook_index_lists_every_alert_and_no_other_page():
    alerts = {r["alert"] for r in _rules()}
    pages = {p.stem for p in (DOCS / "runbooks").glob("*.md")} - {"README"}
    assert pages == alerts
    index = (DOCS / "runbooks/README.md").read_text()
    assert all(f"[{a}.md]({a}.md)" in index for a in alerts)


def test_operations_guide_covers_switch_on_upgrade_rotation_and_cutover():
    text = OPERATIONS.read_text()
    sections = re.findall(r"^##+ (.+)$", text, re.MULTILINE)
    for needed in ("Switching the schedulers on", "Upgrade and rollback", "Rotating the credentials",
                   "Monitoring", "Cutover from the Python service", "Metric mapping",
                   "Dashboards and alerts that change", "Images"):
        assert needed in sections, needed
    assert "kubectl -n petrosa-apps rollout restart deployment/data-manager-auditor" in text
    assert "ENABLE_AUDITOR" in text and "ENABLE_ANALYTICS" in text


def test_metric_mapping_covers_every_python_metric_and_names_only_real_new_ones():
    text = OPERATIONS.read_text()
    table = text.split("### Metric mapping", 1)[1].split("###", 1)[0]
    rows = [r for r in table.splitlines() if r.startswith("| ") and not r.startswith("| Python") and "---" not in r]
    old = " ".join(r.split(" | ")[0] for r in rows)
    new = " ".join(r.split(" | ")[1] for r in rows)
    for name in PYTHON_METRICS:
        assert name in old, name
    named = {n for n in re.findall(r"data_manager_[a-z_]+", new) if not n.endswith("_")}
    assert named and named <= metric_names_in_crates(), named - metric_names_in_crates()
    assert "sum across pods" in table


@pytest.mark.parametrize("path", ["README.md", "docs/operations.md", "helm/templates/NOTES.txt"])
def test_every_helm_upgrade_the_docs_show_resets_then_reuses_values(path):
    text = (REPO / path).read_text()
    commands = [line for line in text.splitlines() if re.search(r"helm upgrade \S+ ", line)]
    assert commands, path
    for command in commands:
        assert "--reset-then-reuse-values" in command, command


def test_readme_links_the_operations_guide_and_the_rotation_procedure():
    readme = (REPO / "README.md").read_text()
    assert "(docs/operations.md)" in readme
    assert "docs/operations.md#rotating-the-credentials" in readme
    assert "docs/runbooks/" in readme


def test_nothing_deployable_points_outside_the_repository():
    paths = [*DOCS.rglob("*.md"), *CHART.rglob("*"), REPO / "Dockerfile.consumer", REPO / "Dockerfile.scheduler",
             REPO / "deploy/docker-compose.yml", *(REPO / "tests/deploy").glob("*.py")]
    for path in paths:
        if path.is_file() and path.suffix not in (".tgz",):
            text = path.read_text(errors="replace")
            assert "shared" + "/spec" not in text and "../" + "shared" not in text, path
