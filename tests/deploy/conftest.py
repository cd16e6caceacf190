"""Shared helpers for the chart and Dockerfile checks: render the chart with the real Helm v4
library (helm-python-sdk) and read the repository's files."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from functools import cache
from pathlib import Path

import helm_python
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm"
VALUES_DIR = Path(__file__).resolve().parent / "values"
RELEASE = "data-manager"
NAMESPACE = "petrosa-apps"

# Value sets every structural test runs against.
DEFAULTS: dict = {}
SCHEDULERS_ON = {"schedulers": {"enabled": True}}
EVERYTHING_ON = {
    "schedulers": {"enabled": True},
    "networkPolicy": {"enabled": True},
    "metrics": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "dashboard": {"enabled": True},
    },
}


def load_values_file(name: str) -> dict:
    return yaml.safe_load((VALUES_DIR / name).read_text()) or {}


class Rendered:
    """One render: the template outputs and the Kubernetes objects parsed from them."""

    def __init__(self, files: dict[str, str]):
        self.files = files
        self.notes = next((t for p, t in files.items() if p.endswith("NOTES.txt")), "")
        self.objects: list[dict] = []
        for path, text in files.items():
            if path.endswith("NOTES.txt") or not text.strip():
                continue
            self.objects.extend(d for d in yaml.safe_load_all(text) if d)

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: found {len(found)} in {self.names()}"
        return found[0]

    def names(self) -> set[tuple[str, str]]:
        return {(o["kind"], o["metadata"]["name"]) for o in self.objects}

    def manifests(self) -> dict[str, str]:
        """The files kubernetes-validate should see (NOTES.txt and empty outputs left out)."""
        return {
            p: t for p, t in self.files.items() if not p.endswith("NOTES.txt") and t.strip()
        }


@cache
def _chart() -> helm_python.Chart:
    return helm_python.Chart.load(CHART)


@cache
def _render_cached(values_json: str) -> Rendered:
    files = _chart().render(
        json.loads(values_json), name=RELEASE, namespace=NAMESPACE, is_install=True
    )
    return Rendered(files)


def render(values: dict) -> Rendered:
    return _render_cached(json.dumps(values, sort_keys=True))


def render_release(values: dict, release: str) -> Rendered:
    """Renders under another release name (a second install in the same namespace)."""
    return Rendered(_chart().render(values, name=release, namespace=NAMESPACE, is_install=True))


def render_without_schema(values: dict, tmp_path: Path) -> Rendered:
    """Renders a copy of the chart without values.schema.json: what `--skip-schema-validation`
    or an old Helm installs. The templates alone must keep the chart's guarantees."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy, symlinks=False)
    (copy / "values.schema.json").unlink()
    files = helm_python.Chart.load(copy).render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return Rendered(files)


def render_error_without_schema(values: dict, tmp_path: Path) -> str:
    try:
        render_without_schema(values, tmp_path)
    except helm_python.HelmError as e:
        return str(e)
    raise AssertionError(f"the chart without its schema accepted {values}")


def render_error(values: dict) -> str:
    """Renders values that must be refused; returns Helm's message."""
    try:
        _chart().render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except helm_python.HelmError as e:
        return str(e)
    raise AssertionError(f"the chart accepted {values}")


def chart_yaml() -> dict:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


def chart_defaults() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def kube_versions() -> list[str]:
    """The minimum of Chart.yaml's kubeVersion and the version the binaries are built against."""
    meta = chart_yaml()
    minimum = re.fullmatch(r">=\s*(\d+\.\d+\.\d+)(-0)?", meta["kubeVersion"]).group(1)
    built = meta["annotations"]["petrosa.io/built-against-kube-version"]
    return sorted({minimum, built})


@cache
def workspace_members() -> dict[str, dict]:
    """Package name -> its Cargo.toml, for every workspace member."""
    root = tomllib.loads((REPO / "Cargo.toml").read_text())
    members = {}
    for member in root["workspace"]["members"]:
        manifest = tomllib.loads((REPO / member / "Cargo.toml").read_text())
        members[manifest["package"]["name"]] = manifest
    return members


def workspace_bins() -> dict[str, str]:
    """`[[bin]]` name -> package name."""
    return {
        b["name"]: pkg
        for pkg, manifest in workspace_members().items()
        for b in manifest.get("bin", [])
    }


@cache
def crate_sources() -> str:
    return "\n".join(p.read_text() for p in sorted((REPO / "crates").rglob("*.rs")))


def metric_names_in_crates() -> set[str]:
    return set(re.findall(r'"(data_manager_[a-z_]+)"', crate_sources()))


def env_vars_in_crates() -> set[str]:
    return set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', crate_sources()))


def pod_specs(rendered: Rendered) -> dict[str, dict]:
    """Deployment name -> pod spec."""
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in rendered.of_kind("Deployment")
    }


def promtool() -> str:
    """Prometheus's checker: the system's, or the one tests/deploy/setup.sh unpacked."""
    found = shutil.which("promtool") or str(REPO / ".venv-helm/bin/promtool")
    assert Path(found).exists(), "promtool is missing: tests/deploy/setup.sh installs it"
    return found
